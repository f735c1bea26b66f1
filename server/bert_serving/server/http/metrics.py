"""Prometheus metrics of the proxy, in a registry of its own (not the process-wide default).

Counters and the latency histogram are per endpoint. The server-side gauges are read from
SHOW_STATUS when Prometheus scrapes, so they are never stale; ``bert_server_up`` says
whether that worked.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from .link import LinkTimeoutError

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# gauge name -> (help, SHOW_STATUS statistic it reads)
SERVER_GAUGES = {
    "bert_server_queued_parts": ("parts waiting in the server's queue", "num_queued_parts"),
    "bert_server_in_flight_parts": (
        "parts handed to workers and not yet done",
        "num_in_flight_parts",
    ),
    "bert_server_recent_requests_per_second": (
        "requests per second over the last minute",
        "recent_request_per_second",
    ),
    "bert_server_recent_texts_per_second": (
        "texts per second over the last minute",
        "recent_seq_per_second",
    ),
    "bert_server_recent_clients": ("clients seen recently", "num_recent_client"),
}
# counter name -> (help, SHOW_STATUS field it reads): what happened to workers
WORKER_COUNTERS = {
    "bert_server_worker_losses": (
        "workers given up on (silent, hung or dead) since the server started",
        "num_worker_losses",
    ),
    "bert_server_worker_rejoins": (
        "workers that registered again after their session ended",
        "num_worker_rejoins",
    ),
    "bert_server_worker_refusals": (
        "worker registrations refused (their vectors would differ)",
        "num_worker_refusals",
    ),
}
WORKER_LABELS = ["name", "host", "device", "remote"]


# the metric declarations below are alike on purpose: one per series
class ProxyMetrics:
    def __init__(self, server_status: Callable[[], dict], logger: logging.Logger) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "bert_http_requests",
            "HTTP requests answered, by endpoint and status",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.texts = Counter(
            "bert_http_texts",
            "texts encoded for HTTP requests, by endpoint",
            ["endpoint"],
            registry=self.registry,
        )
        self.errors = Counter(
            "bert_http_errors",
            "HTTP requests answered with an error, by endpoint and status",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "bert_http_request_duration_seconds",
            "time to answer an HTTP request, by endpoint",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_ServerStatusCollector(server_status, logger))

    def observe(self, endpoint: str, status: int, seconds: float, num_texts: int) -> None:
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)
        if status >= 400:
            self.errors.labels(endpoint, str(status)).inc()
        elif num_texts:
            self.texts.labels(endpoint).inc(num_texts)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _ServerStatusCollector:
    """Gauges read from the server at every scrape."""

    def __init__(self, server_status: Callable[[], dict], logger: logging.Logger) -> None:
        self._server_status = server_status
        self._logger = logger

    def collect(self) -> Iterator[Metric]:
        try:
            status = self._server_status()
            statistic = status["statistic"]
        except (LinkTimeoutError, RuntimeError, KeyError) as err:
            self._logger.warning("metrics: no status from the server: %s", err)
            status = statistic = None
        yield GaugeMetricFamily(
            "bert_server_up",
            "1 when the server answered its status at this scrape",
            value=0 if statistic is None else 1,
        )
        if statistic is None:
            return
        for name, (description, key) in SERVER_GAUGES.items():
            yield GaugeMetricFamily(name, description, value=float(statistic[key]))
        yield from _worker_metrics(status)


def _worker_metrics(status: dict) -> Iterator[Metric]:
    """How many workers serve, what happened to workers, and each worker's own numbers."""
    workers = status.get("workers", [])
    yield GaugeMetricFamily(
        "bert_server_workers_serving", "workers registered and serving", value=len(workers)
    )
    for name, (description, key) in WORKER_COUNTERS.items():
        yield CounterMetricFamily(name, description, value=float(status.get(key, 0)))
    parts = CounterMetricFamily(
        "bert_server_worker_parts_done", "parts a worker answered", labels=WORKER_LABELS
    )
    heartbeat = GaugeMetricFamily(
        "bert_server_worker_last_heartbeat_seconds",
        "seconds since the front last heard from a worker",
        labels=WORKER_LABELS,
    )
    for worker in workers:
        remote = "true" if worker["remote"] else "false"
        labels = [worker["name"], worker["host"], worker["device"], remote]
        parts.add_metric(labels, float(worker["parts_done"]))
        heartbeat.add_metric(labels, float(worker["last_heartbeat_s"]))
    yield parts
    yield heartbeat
