"""Measure every point: a server with the point's settings, its clients, its rounds.

A failing point (a setting the server refuses, a worker that cannot load, a client that
times out) becomes that point's result and the benchmark goes on with the next one.
"""

from __future__ import annotations

import argparse
import logging
import statistics
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from bert_serving.server import BertServer
from bert_serving.server.network import free_ports, local_address

from .experiments import Point, Settings
from .load import Address, client_batches, time_rounds


@dataclass(frozen=True)
class LoadOptions:
    """How each point is measured."""

    num_warmup: int
    num_repeat: int
    seed: int
    client_timeout: float  # seconds one encode may take


@dataclass
class PointResult:
    """The rounds of one point, warm-up rounds first, or the error that stopped it."""

    point: Point
    num_warmup: int
    round_seconds: list[float] = field(default_factory=list)
    error: str | None = None
    started: str = ""
    finished: str = ""

    @property
    def samples_per_round(self) -> int:
        return self.point.settings.num_client * self.point.settings.client_batch_size

    @property
    def speeds(self) -> list[float]:
        """Samples per second of each measured round (warm-up rounds left out)."""
        measured = self.round_seconds[self.num_warmup :]
        return [self.samples_per_round / seconds for seconds in measured]

    def summary(self) -> dict[str, float] | None:
        """Mean, sample standard deviation, min and max of ``speeds``; None without any."""
        speeds = self.speeds
        if self.error is not None or not speeds:
            return None
        return {
            "mean": statistics.fmean(speeds),
            "std": statistics.stdev(speeds) if len(speeds) > 1 else 0.0,
            "min": min(speeds),
            "max": max(speeds),
        }


class ServerKeeper:
    """One server at a time, kept running while consecutive points need the same one."""

    def __init__(self, server_args: dict, wait_till_ready: float, logger: logging.Logger) -> None:
        self._server_args = server_args
        self._wait_till_ready = wait_till_ready
        self._logger = logger
        self._server: BertServer | None = None
        self._key: tuple | None = None
        self._address: Address | None = None
        self.devices: list[int] | None = None  # of the first server: -1 is the CPU

    def address_for(self, settings: Settings) -> Address:
        """A ready server with these settings: the running one, or a new one."""
        if self._server is not None and self._key == settings.server_key:
            return self._address
        self.close()
        args = argparse.Namespace(**self._server_args)
        args.max_seq_len = settings.max_seq_len
        args.max_batch_size = settings.max_batch_size
        args.pooling_layer = list(settings.pooling_layer)
        args.port, args.port_out = _ports(args.port, args.port_out)
        self._server = BertServer(args)  # refuses bad settings before any process starts
        self.devices = self.devices or list(self._server.devices)
        self._logger.debug("starting a server on ports %d and %d", args.port, args.port_out)
        self._server.start()
        self._server.wait_until_ready(self._wait_till_ready)
        self._key = settings.server_key
        self._address = Address(local_address(args.bind_ip), args.port, args.port_out)
        return self._address

    def close(self) -> None:
        """Stop the running server, if any; its ports are free when this returns."""
        if self._server is not None:
            self._server.close()
        self._server = self._key = self._address = None

    def __enter__(self) -> ServerKeeper:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_points(
    points: list[Point],
    servers: ServerKeeper,
    words: list[str],
    options: LoadOptions,
    on_result: Callable[[PointResult], None],
) -> list[PointResult]:
    """Measure each point in turn, calling ``on_result`` after each."""
    results = []
    for point in points:
        result = measure(point, servers, words, options)
        if result.error is not None:
            servers.close()  # a failed server, or one still busy with a lost request
        on_result(result)
        results.append(result)
    return results


def measure(
    point: Point, servers: ServerKeeper, words: list[str], options: LoadOptions
) -> PointResult:
    """Time ``num_warmup + num_repeat`` rounds of the point's clients; never raises."""
    result = PointResult(point, options.num_warmup, started=timestamp())
    settings = point.settings
    batches = client_batches(
        words, settings.num_client, settings.client_batch_size, settings.max_seq_len, options.seed
    )
    try:
        address = servers.address_for(settings)
        result.round_seconds = time_rounds(
            address, batches, options.num_warmup + options.num_repeat, options.client_timeout
        )
    except Exception as error:  # any failure is this point's result, not the run's end
        result.error = "; ".join(str(error).splitlines()) or type(error).__name__
    result.finished = timestamp()
    return result


def timestamp() -> str:
    """Local time to the second, as the results record when things happened."""
    return datetime.now().isoformat(timespec="seconds")


def _ports(port: int | None, port_out: int | None) -> tuple[int, int]:
    """The ports asked for, or free ones: each server of the run gets its own."""
    free = free_ports(2)
    return port or free[0], port_out or free[1]
