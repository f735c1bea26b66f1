"""`make demo`: start a server on the embedded default model, encode three sentences, stop it.

Runs the two command-line tools exactly as a user would (`bert-serving-start`,
`bert-serving-terminate`) and talks to the server with `BertClient`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bert_serving.client import BertClient
from bert_serving.server.network import free_ports

SENTENCES = ["First do it", "then do it right", "then do it better"]
BIN = Path(sys.executable).parent


def cosine_matrix(vectors: np.ndarray) -> np.ndarray:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit @ unit.T


def main() -> int:
    port, port_out = free_ports(2)
    started = time.monotonic()
    server = subprocess.Popen(
        [str(BIN / "bert-serving-start"), "-port", str(port), "-port_out", str(port_out), "-cpu"]
    )
    try:
        with BertClient(port=port, port_out=port_out, timeout=180_000) as bc:
            vectors = bc.encode(SENTENCES)
            print(f"\nserver up and first answer after {time.monotonic() - started:.1f} s")
            print(f"model: {bc.server_config['model_dir']}")
            for sentence, vector in zip(SENTENCES, vectors):
                print(f"{sentence!r:>22}: shape {vector.shape}, first values {vector[:3].round(4)}")
            print("pairwise cosine similarity:")
            similarity = cosine_matrix(vectors)
            for i, sentence in enumerate(SENTENCES):
                print(f"{sentence!r:>22}: " + "  ".join(f"{v:.3f}" for v in similarity[i]))
    finally:
        subprocess.run(
            [str(BIN / "bert-serving-terminate"), "-port", str(port), "-timeout", "30000"],
            check=False,
        )
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
    return server.returncode or 0


if __name__ == "__main__":
    sys.exit(main())
