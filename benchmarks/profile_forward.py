"""Where the TensorFlow forward pass spends its time: milliseconds per op type, per shape.

    python benchmarks/profile_forward.py [--shapes 1x16 64x28 256x28] [--calls 5]
    ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/profile_forward.py   # as on an AVX2-only CPU

Runs SentenceEncoder's forward ``tf.function`` (all-MiniLM-L6-v2, float32, last-layer mean
pooling) under ``tf.profiler`` with op-level host tracing, reads the trace it writes (an
XSpace protobuf) and adds up the duration of every op by its type. The executor runs one op
at a time here (inter-op parallelism 1), so the sum is close to the wall time, and what is
not matmul is what a fused runtime could win back.
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.tsl.profiler.protobuf import xplane_pb2

from bert_serving.server.default_model import default_model_dir
from bert_serving.server.model import inspect_model
from bert_serving.server.model.encoder import EncoderSettings, SentenceEncoder

EXECUTOR_LINE = "tf_Compute"  # the trace line on which TensorFlow's executor runs each op


def op_times(trace_dir: Path, calls: int) -> tuple[dict[str, float], dict[str, float]]:
    """Milliseconds and executions per call of each op type, from a profiler trace."""
    space = xplane_pb2.XSpace()
    space.ParseFromString(next(trace_dir.rglob("*.xplane.pb")).read_bytes())
    times: dict[str, float] = collections.Counter()
    counts: dict[str, float] = collections.Counter()
    for plane in space.planes:
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            if EXECUTOR_LINE not in line.name:
                continue
            for event in line.events:
                name = names.get(event.metadata_id, "")
                # op events are "node_name:OpType"; the executor's own events have no colon
                if ":" in name and "::" not in name:
                    kind = name.rsplit(":", 1)[1]
                    times[kind] += event.duration_ps / 1e9 / calls
                    counts[kind] += 1 / calls
    return times, counts


def profile_shape(encoder: SentenceEncoder, rows: int, length: int, calls: int) -> None:
    """Print wall time per call and the op types that take the most of it."""
    ids = np.random.default_rng(0).integers(1000, 20000, (rows, length)).astype(np.int32)
    inputs = (ids, np.ones_like(ids), np.zeros_like(ids), np.full(rows, length, np.int32))
    for _ in range(3):
        encoder.graph.function(*inputs)
    start = time.perf_counter()
    for _ in range(calls):
        encoder.graph.function(*inputs).numpy()
    wall = (time.perf_counter() - start) / calls * 1000
    with tempfile.TemporaryDirectory() as trace_dir:
        options = tf.profiler.experimental.ProfilerOptions(host_tracer_level=3)
        tf.profiler.experimental.start(trace_dir, options=options)
        for _ in range(calls):
            encoder.graph.function(*inputs).numpy()
        tf.profiler.experimental.stop()
        times, counts = op_times(Path(trace_dir), calls)
    total = sum(times.values())
    print(f"\n{rows} x {length} tokens: {wall:.2f} ms per call, ops {total:.2f} ms")
    for kind, ms in sorted(times.items(), key=lambda item: -item[1])[:8]:
        print(f"  {kind:<26} {ms:8.2f} ms {ms / total * 100:5.1f} %  x{counts[kind]:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=["1x16", "1x40", "64x28", "256x28"])
    parser.add_argument("--calls", type=int, default=5)
    options = parser.parse_args()
    tf.config.threading.set_inter_op_parallelism_threads(1)  # as the server's CPU workers
    settings = EncoderSettings(max_seq_len=128, pooling_layer=(-1,), precision="float32")
    encoder = SentenceEncoder(inspect_model(default_model_dir()), settings)
    for shape in options.shapes:
        rows, length = (int(part) for part in shape.split("x"))
        profile_shape(encoder, rows, length, options.calls)


if __name__ == "__main__":
    main()
