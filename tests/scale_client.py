"""A client for the multi-host tests, run inside a network namespace (``tests/netns.py``).

    python -m tests.scale_client status PORT PORT_OUT
        print the server's status as JSON
    python -m tests.scale_client stream PORT PORT_OUT SECONDS OUT_DIR [FIRST]
        encode request after request for SECONDS; save every answer (OUT_DIR/answers.npz,
        keyed by request number, texts from ``texts_for``), each latency, and a timeline of
        how many workers served (OUT_DIR/report.json), sampled every 0.2 s

The test process judges the answers against an in-process encoder afterwards; this file
only talks to the server, over the namespace's network.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import zmq.auth

from bert_serving.client import BertClient

WORDS = ["hello", "world", "this", "is", "it", "good", "day", "first", "do", "then", "right"]
TIMEOUT_MS = 60_000
SAMPLE_SECONDS = 0.2


def texts_for(number: int) -> list[str]:
    """The texts of request ``number``: 1 to 12 texts of 1 to 9 words, seeded."""
    rng = np.random.default_rng(number)
    return [
        " ".join(rng.choice(WORDS, size=int(rng.integers(1, 10))))
        for _ in range(int(rng.integers(1, 13)))
    ]


def client(port: int, port_out: int) -> BertClient:
    """A client of the front beside it; with $SCALE_CLIENT_CURVE (a key pair file that the
    front accepts, its own), over CURVE."""
    options = {}
    key_file = os.environ.get("SCALE_CLIENT_CURVE")
    if key_file:
        public, secret = zmq.auth.load_certificate(key_file)
        options = {"curve_server_key": public, "curve_client_keys": (public, secret)}
    return BertClient(ip="127.0.0.1", port=port, port_out=port_out, timeout=TIMEOUT_MS, **options)


def status(port: int, port_out: int) -> None:
    with client(port, port_out) as bc:
        print(json.dumps(bc.server_status))


def stream(port: int, port_out: int, seconds: float, out_dir: Path, first: int = 0) -> None:
    answers: dict[str, np.ndarray] = {}
    latencies: list[float] = []
    timeline: list[tuple[float, int]] = []
    errors: list[str] = []
    done = threading.Event()

    def sample() -> None:
        with client(port, port_out) as watcher:
            while not done.is_set():
                serving = watcher.server_status["num_workers_serving"]
                timeline.append((time.time(), serving))
                time.sleep(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    deadline = time.monotonic() + seconds
    number = first
    try:
        with client(port, port_out) as bc:
            while time.monotonic() < deadline:
                started = time.monotonic()
                answers[str(number)] = bc.encode(texts_for(number))
                latencies.append(time.monotonic() - started)
                number += 1
    except Exception as err:  # reported, judged by the test
        errors.append(f"{type(err).__name__}: {err}")
    done.set()
    sampler.join(10)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(out_dir / "answers.npz", **answers)
    report = {"latencies": latencies, "timeline": timeline, "errors": errors}
    (out_dir / "report.json").write_text(json.dumps(report))


if __name__ == "__main__":
    command, port, port_out, *rest = sys.argv[1:]
    if command == "status":
        status(int(port), int(port_out))
    else:
        seconds, out_dir, *first = rest
        stream(
            int(port), int(port_out), float(seconds), Path(out_dir), int(first[0]) if first else 0
        )
