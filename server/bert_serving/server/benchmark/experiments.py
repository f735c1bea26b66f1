"""What the benchmark varies: one setting at a time, the others at their common values."""

from __future__ import annotations

from dataclasses import dataclass, replace

from bert_serving.server.args import MIN_MAX_SEQ_LEN

# In the order 1.10 reported them; each names a field of Settings.
EXPERIMENTS = ("max_seq_len", "client_batch_size", "num_client", "max_batch_size", "pooling_layer")


@dataclass(frozen=True)
class Settings:
    """Everything a point's speed depends on that the benchmark varies.

    The first three are server arguments, the last two describe the clients.
    """

    max_seq_len: int
    max_batch_size: int
    pooling_layer: tuple[int, ...]
    client_batch_size: int
    num_client: int

    @property
    def server_key(self) -> tuple:
        """Points with equal keys can share one server: only their clients differ."""
        return self.max_seq_len, self.max_batch_size, self.pooling_layer


@dataclass(frozen=True)
class Point:
    """One measurement: ``experiment`` set to ``value``, everything else common."""

    experiment: str
    value: int
    settings: Settings


def plan(common: Settings, tested: dict[str, list[int]]) -> list[Point]:
    """Every point to measure, experiment by experiment; an empty list skips an experiment."""
    points = []
    for experiment in EXPERIMENTS:
        for value in tested.get(experiment, []):
            setting = (value,) if experiment == "pooling_layer" else value
            points.append(Point(experiment, value, replace(common, **{experiment: setting})))
    return points


def check_values(experiment: str, values: list[int]) -> list[str]:
    """Problems with tested values that no server needs to be asked about."""
    if experiment == "pooling_layer":
        return []  # only the model knows its layers; a bad one fails its point alone
    minimum = MIN_MAX_SEQ_LEN if experiment == "max_seq_len" else 1
    bad = [value for value in values if value < minimum]
    if bad:
        return [f"-test_{experiment} {' '.join(map(str, bad))}: values must be at least {minimum}"]
    return []
