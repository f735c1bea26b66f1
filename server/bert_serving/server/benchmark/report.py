"""The results for people (markdown tables as in 1.10's README) and for programs (JSON, CSV)."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from .runner import LoadOptions, PointResult

CSV_COLUMNS = (
    "experiment",
    "value",
    "max_seq_len",
    "max_batch_size",
    "pooling_layer",
    "client_batch_size",
    "num_client",
    "rounds",
    "mean",
    "std",
    "min",
    "max",
    "error",
    "started",
    "finished",
)


@dataclass
class RunInfo:
    """What a run measured, where and when: everything but the points themselves."""

    started: str
    command: list[str]
    model: dict[str, object]
    common: dict[str, object]
    load: LoadOptions
    machine: dict[str, object]
    versions: dict[str, str]
    device: str = ""
    finished: str = ""


def format_header(info: RunInfo) -> str:
    """The common arguments, the model, the machine and the versions, in markdown."""
    rows = [("model", _model_text(info.model))]
    rows += [(name, _value_text(value)) for name, value in info.common.items()]
    load = info.load
    rows.append(("rounds per point", f"{load.num_repeat} measured after {load.num_warmup} warm-up"))
    machine = info.machine
    cpu = machine["cpu"] or "unknown processor"
    versions = ", ".join(f"{name} {version}" for name, version in info.versions.items())
    return "\n".join(
        [
            f"Common arguments (started {info.started}):",
            "",
            *_table(("Parameter", "Value"), rows),
            "",
            f"Machine: {cpu}, {machine['cores']} cores, {machine['platform']}.",
            f"Python {machine['python']}; {versions}.",
        ]
    )


def format_table(experiment: str, results: list[PointResult], device: str) -> str:
    """1.10's table: one row per value, the mean samples/s of this machine's device.

    Points that failed say so in the table and have their reason listed below it.
    """
    rows = []
    failures = []
    for result in results:
        summary = result.summary()
        rows.append((str(result.point.value), "failed" if summary is None else _speed(summary)))
        if result.error is not None:
            failures.append(f"- `{experiment}` = {result.point.value} failed: {result.error}")
    lines = [f"#### Speed w.r.t. `{experiment}`", "", *_table((f"`{experiment}`", device), rows)]
    return "\n".join(lines + (["", *failures] if failures else []))


def _speed(summary: dict[str, float]) -> str:
    mean = summary["mean"]
    return f"{mean:.0f}" if mean >= 100 else f"{mean:.1f}"


def _table(header: tuple[str, str], rows: list[tuple[str, str]]) -> list[str]:
    return [f"| {header[0]} | {header[1]} |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]


def _model_text(model: dict[str, object]) -> str:
    return (
        f"{model['name']} ({model['num_hidden_layers']} layers, hidden size {model['hidden_size']})"
    )


def _value_text(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value))
    return str(value)


def write_json(path: Path, info: RunInfo, results: list[PointResult]) -> None:
    """Everything: settings, machine, versions, and every round of every point."""
    experiments: dict[str, list[dict]] = {}
    for result in results:
        experiments.setdefault(result.point.experiment, []).append(_point_record(result))
    document = {"tool": "bert-serving-benchmark", **asdict(info), "experiments": experiments}
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def _point_record(result: PointResult) -> dict:
    settings = asdict(result.point.settings)
    settings["pooling_layer"] = list(result.point.settings.pooling_layer)
    return {
        "value": result.point.value,
        "settings": settings,
        "samples_per_round": result.samples_per_round,
        "rounds": [
            {
                "seconds": seconds,
                "samples_per_second": result.samples_per_round / seconds,
                "warmup": index < result.num_warmup,
            }
            for index, seconds in enumerate(result.round_seconds)
        ],
        "summary": result.summary(),
        "error": result.error,
        "started": result.started,
        "finished": result.finished,
    }


def write_csv(path: Path, results: list[PointResult]) -> None:
    """One row per point: its settings and the summary of its measured rounds."""
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for result in results:
            settings = result.point.settings
            writer.writerow(
                {
                    "experiment": result.point.experiment,
                    "value": result.point.value,
                    **asdict(settings),
                    "pooling_layer": " ".join(map(str, settings.pooling_layer)),
                    "rounds": len(result.speeds),
                    **{name: round(value, 2) for name, value in (result.summary() or {}).items()},
                    "error": result.error or "",
                    "started": result.started,
                    "finished": result.finished,
                }
            )
