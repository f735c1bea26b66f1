"""A client process whose memory is its own: prints how much its chunked encode grew it.

    python -m tests.memory_client PORT PORT_OUT CHUNK_SIZE ANSWER.npy

Encodes the texts of tests/test_memory.py once (every allocation pattern seen once), then
resets the kernel's peak-RSS mark (/proc/self/clear_refs) and encodes them again in chunks;
prints JSON: the answer's bytes, the RSS just before and the peak during; saves the answer.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from bert_serving.client import BertClient
from tests.test_memory import texts


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def main() -> None:
    port, port_out, chunk_size = (int(value) for value in sys.argv[1:4])
    batch = texts()
    with BertClient(port=port, port_out=port_out, timeout=600_000) as bc:
        bc.encode(batch, chunk_size=chunk_size)
        idle = status_kib("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # the peak mark starts again from here
        answer = bc.encode(batch, chunk_size=chunk_size)
        peak = status_kib("VmHWM")
    np.save(sys.argv[4], answer)
    print(json.dumps({"bytes": answer.nbytes, "idle": idle * 1024, "peak": peak * 1024}))


if __name__ == "__main__":
    main()
