"""Tutorial: save encodings to a TFRecord file and load them back as a `tf.data.Dataset`.

Sentence vectors are stored as float lists; token-level encodings (-pooling_strategy NONE)
are flattened on writing and reshaped on reading. TensorFlow 2 names: `tf.io.TFRecordWriter`
and `tf.io.parse_single_example` (1.x had `tf.python_io` and `tf.parse_single_example`).

    python example/tfrecord.py [--out tmp.tfrecord] [--port P --port_out Q]
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from helpers import example_parser, server_for

TEXTS = ["First do it", "then do it right", "then do it better", "and then ship it"]


def float_feature(values: np.ndarray):
    import tensorflow as tf

    return tf.train.Feature(float_list=tf.train.FloatList(value=np.reshape(values, -1)))


def int_feature(values: list[int]):
    import tensorflow as tf

    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def write_records(path: Path, vectors: np.ndarray, labels: list[int]) -> None:
    """One tf.train.Example per text: its (flattened) encoding and its label."""
    import tensorflow as tf

    with tf.io.TFRecordWriter(str(path)) as writer:
        for vector, label in zip(vectors, labels):
            features = {"features": float_feature(vector), "labels": int_feature([label])}
            example = tf.train.Example(features=tf.train.Features(feature=features))
            writer.write(example.SerializeToString())


def read_records(path: Path, shape: tuple[int, ...], batch_size: int):
    """A dataset of {'features': [*shape], 'labels': int} batches read from `path`."""
    import tensorflow as tf

    spec = {
        "features": tf.io.FixedLenFeature([int(np.prod(shape))], tf.float32),
        "labels": tf.io.FixedLenFeature([], tf.int64),
    }

    def decode(record):
        example = tf.io.parse_single_example(record, spec)
        example["features"] = tf.reshape(example["features"], shape)
        return example

    return tf.data.TFRecordDataset(str(path)).map(decode).batch(batch_size)


def main(argv: list[str] | None = None) -> int:
    parser = example_parser(__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="file to write (default: temp)")
    options = parser.parse_args(argv)
    with server_for(options) as server, server.client() as bc:
        vectors = bc.encode(TEXTS)
    labels = [index % 2 for index in range(len(TEXTS))]

    with tempfile.TemporaryDirectory() as tmp:
        path = options.out or Path(tmp) / "encodings.tfrecord"
        write_records(path, vectors, labels)
        print(
            f"wrote {len(TEXTS)} records of {vectors.shape[1:]} to {path.name} "
            f"({path.stat().st_size} bytes)"
        )
        loaded = [batch for batch in read_records(path, vectors.shape[1:], batch_size=2)]
        print(
            f"read back {len(loaded)} batches: "
            f"{[tuple(batch['features'].shape) for batch in loaded]}"
        )
        restored = np.concatenate([batch["features"].numpy() for batch in loaded])
        restored_labels = np.concatenate([batch["labels"].numpy() for batch in loaded])
    same = np.array_equal(restored, vectors) and restored_labels.tolist() == labels
    print(f"round trip identical: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
