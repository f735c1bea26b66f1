"""The answers to SHOW_CONFIG and SHOW_STATUS: pure functions of what the server knows.

1.10 clients read ``server_config`` as the start arguments plus versions and process facts,
and ``server_status`` as the same plus a ``statistic`` object; both are built here from plain
values, so they are tested without a running server.
"""

from __future__ import annotations

import argparse
import platform
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from importlib import metadata
from typing import Any

import zmq

from . import __version__
from .args import SECRET_ARGUMENTS
from .model.checkpoint import ModelSpec

REDACTED = "***"


@dataclass(frozen=True)
class ServerFacts:
    """What the config answer reports beyond the arguments, read when it is asked for."""

    start_time: datetime
    num_process: int
    num_restarts: int
    device_map: list[int]
    ready: bool
    num_workers_serving: int


@dataclass(frozen=True)
class WorkerFacts:
    """Who serves, for ``server_status``: every registered worker, and what happened."""

    workers: list[dict[str, Any]]
    losses: int  # workers given up on (silent, hung or dead)
    rejoins: int  # workers that registered again after a session ended
    refusals: int  # registrations refused (other vectors)


def config_answer(
    args: argparse.Namespace, spec: ModelSpec, client: bytes, facts: ServerFacts
) -> dict[str, Any]:
    """The arguments (secrets redacted), versions, process facts and the model's shape."""
    body = {
        name: REDACTED if value is not None and name in SECRET_ARGUMENTS else _jsonable(value)
        for name, value in vars(args).items()
    }
    config = spec.config
    body.update(
        {
            "client": client.decode("utf-8", "replace"),
            "server_version": __version__,
            "python_version": platform.python_version(),
            "tensorflow_version": _installed_version("tensorflow", "tensorflow-cpu"),
            "pyzmq_version": zmq.pyzmq_version(),
            "zmq_version": zmq.zmq_version(),
            "server_start_time": str(facts.start_time),
            "server_current_time": str(datetime.now()),
            "num_process": facts.num_process,
            "num_restarts": facts.num_restarts,
            "device_map": facts.device_map,
            "ready": facts.ready,
            "num_workers_serving": facts.num_workers_serving,
            "model": {
                "hidden_size": config.hidden_size,
                "num_hidden_layers": config.num_hidden_layers,
                "max_position_embeddings": config.max_position_embeddings,
                "vocab_size": config.vocab_size,
                "has_pooler": spec.has_pooler,
            },
        }
    )
    return body


def status_answer(
    config: dict[str, Any], statistic: dict[str, Any], workers: WorkerFacts
) -> dict[str, Any]:
    """The config answer with the request statistics of 1.10's ``server_status`` and the
    list of workers."""
    return {
        **config,
        "statistic": statistic,
        "workers": workers.workers,
        "num_worker_losses": workers.losses,
        "num_worker_rejoins": workers.rejoins,
        "num_worker_refusals": workers.refusals,
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, Enum):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def _installed_version(*distributions: str) -> str | None:
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None
