"""Tutorial: BertClient inside a `tf.data` pipeline, encoding on the fly.

`tf.py_function` calls Python from the pipeline; each call takes a BertClient from a
pool and gives it back, so `num_parallel_calls` maps can encode at the same time (a
ZeroMQ socket must not be used by two threads at once). TensorFlow 2 replaced 1.x's
`tf.py_func` with `tf.py_function`; the rest is as in 1.10.

    python example/tf_data.py [--port P --port_out Q]
"""

from __future__ import annotations

import json
import os
import queue
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from helpers import example_parser, server_for

LINES = [
    {"raw_text": "the movie was wonderful", "label": "pos"},
    {"raw_text": "a dull and boring film", "label": "neg"},
    {"raw_text": "I loved every minute", "label": "pos"},
    {"raw_text": "the plot made no sense", "label": "neg"},
    {"raw_text": "great acting and a clever story", "label": "pos"},
    {"raw_text": "I want those two hours back", "label": "neg"},
    {"raw_text": "a joy from start to end", "label": "pos"},
    {"raw_text": "terrible, just terrible", "label": "neg"},
] * 4
BATCH_SIZE = 8
NUM_PARALLEL_CALLS = 2


def main(argv: list[str] | None = None) -> int:
    import tensorflow as tf

    options = example_parser(__doc__.splitlines()[0]).parse_args(argv)
    with server_for(options) as server:
        pool: queue.Queue = queue.Queue()
        for _ in range(NUM_PARALLEL_CALLS * 2):  # more clients than parallel calls
            pool.put(server.client())

        def get_encodes(lines: tf.Tensor) -> tuple[np.ndarray, np.ndarray]:
            samples = [json.loads(line) for line in lines.numpy()]
            texts = [sample["raw_text"] for sample in samples]
            labels = [sample["label"] for sample in samples]
            bc = pool.get()  # take a free client, and give it back after use
            try:
                features = bc.encode(texts)
            finally:
                pool.put(bc)
            return features, np.array(labels)

        lines = tf.data.Dataset.from_tensor_slices([json.dumps(line) for line in LINES])
        ds = (
            lines.batch(BATCH_SIZE)
            .map(
                lambda x: tf.py_function(get_encodes, [x], [tf.float32, tf.string]),
                num_parallel_calls=NUM_PARALLEL_CALLS,
            )
            .map(lambda x, y: {"feature": x, "label": y})
        )
        try:
            total = 0
            for step, batch in enumerate(ds):
                total += int(batch["feature"].shape[0])
                print(
                    f"batch {step}: feature {tuple(batch['feature'].shape)}, "
                    f"labels {[label.decode() for label in batch['label'].numpy()[:4]]}..."
                )
            print(f"{total} lines encoded through tf.data")
        finally:
            while not pool.empty():
                pool.get().close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
