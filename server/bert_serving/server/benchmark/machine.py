"""Where the numbers come from: the processor, the cores, the software versions.

Speeds mean little without the machine they were measured on, so every report names it.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from importlib import metadata

from bert_serving.server.cpuinfo import CPUINFO, first_processor
from bert_serving.server.devices import CPU

# Distributions whose versions decide the speed or the protocol; missing ones are left out.
DISTRIBUTIONS = (
    "bert-serving-server",
    "bert-serving-client",
    "tensorflow",
    "tensorflow-cpu",
    "numpy",
    "pyzmq",
)


def describe_machine(cpuinfo: str | os.PathLike = CPUINFO) -> dict[str, object]:
    """Processor model (when /proc/cpuinfo names it), usable cores, OS and Python."""
    return {
        "cpu": cpu_model(cpuinfo),
        "cores": usable_cores(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def usable_cores() -> int:
    """Cores this process may run on (a container or taskset may allow fewer than exist)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_model(cpuinfo: str | os.PathLike = CPUINFO) -> str | None:
    """The processor's model name, with its family and model numbers where /proc/cpuinfo
    gives them: virtual machines often name every AMD EPYC alike ("AMD EPYC"), and only the
    numbers tell a Zen 3 (family 25 model 1, AVX2 only) from a Zen 4 (family 25 model 17,
    AVX-512 and bfloat16), which differ in speed and in what ``-precision auto`` picks."""
    fields = first_processor(cpuinfo)
    name = fields.get("model name") or platform.processor() or None
    if name and "cpu family" in fields and "model" in fields:
        return f"{name}, family {fields['cpu family']} model {fields['model']}"
    return name


def installed_versions(distributions: Sequence[str] = DISTRIBUTIONS) -> dict[str, str]:
    """Versions of the installed distributions among ``distributions``."""
    versions = {}
    for name in distributions:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def device_label(devices: list[int] | None, cores: int) -> str:
    """The table column of this machine, as 1.10 named it: "1 GPU", or "CPU (2 cores)"."""
    if not devices:
        return "no server started"
    gpus = {device for device in devices if device != CPU}
    details = [] if gpus else [f"{cores} cores"]
    if len(devices) > max(len(gpus), 1):
        details.append(f"{len(devices)} workers")
    name = f"{len(gpus)} GPU" if gpus else "CPU"
    return f"{name} ({', '.join(details)})" if details else name
