"""Choose a device for each worker before any worker imports TensorFlow.

GPUs are queried through GPUtil (nvidia-smi), not TensorFlow: the choice must be made
in the parent process, which never loads TensorFlow, and each worker then sees only
its own GPU through ``CUDA_VISIBLE_DEVICES``.
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

from bert_serving.server.args import ArgumentError

CPU = -1
# A GPU busier than this (load or memory share) is not offered as free.
MAX_LOAD_OF_FREE_GPU = 0.9
MAX_MEMORY_OF_FREE_GPU = 0.9


def assign_devices(
    num_worker: int,
    device_map: list[int],
    use_cpu: bool,
    logger: logging.Logger,
    gputil: Any = None,
) -> list[int]:
    """Return one device id per worker, -1 meaning the CPU.

    ``gputil`` stands in for the GPUtil module (tests pass a fake); by default GPUtil
    is imported here, not at module level, as a missing GPUtil just means no GPU.

    Without GPUs (or without a working GPUtil) every worker falls back to the CPU with
    a warning, so a GPU-less machine serves without any flag.
    """
    if use_cpu or num_worker == 0:  # a front whose workers are all remote places none
        return [CPU] * num_worker
    try:
        gputil = gputil or _import_gputil()
        gpus = list(gputil.getGPUs())
    except Exception as error:  # GPUtil raises whatever nvidia-smi's absence causes
        logger.debug("cannot query GPUs: %r", error)
        gpus = []
    if not gpus:
        logger.warning("no GPU found, falling back to CPU for all %d worker(s)", num_worker)
        return [CPU] * num_worker
    if device_map:
        return _follow_device_map(num_worker, device_map, [gpu.id for gpu in gpus], logger)
    return _pick_free_gpus(num_worker, gputil, logger)


def gpu_memory_limit_mb(device_id: int, fraction: float, gputil: Any = None) -> int | None:
    """Memory a worker may take on its GPU, in MB; None for the CPU, which has no cap."""
    if device_id == CPU:
        return None
    gpus = (gputil or _import_gputil()).getGPUs()
    for gpu in gpus:
        if gpu.id == device_id:
            return int(fraction * gpu.memoryTotal)
    raise ValueError(f"GPU {device_id} not found; GPUs found: {_describe_ids(gpus)}")


def worker_environment(device_id: int, verbose: bool = False) -> dict[str, str]:
    """Environment a worker sets before importing TensorFlow.

    ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` makes CUDA number GPUs as nvidia-smi (and so
    GPUtil) does; otherwise the id chosen here could name another card. Inside the
    worker, its GPU is then ``GPU:0``.
    """
    return {
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        "CUDA_VISIBLE_DEVICES": str(device_id) if device_id != CPU else "-1",
        "TF_CPP_MIN_LOG_LEVEL": "0" if verbose else "2",
    }


def _import_gputil() -> ModuleType:
    import GPUtil

    return GPUtil


def _follow_device_map(
    num_worker: int, device_map: list[int], gpu_ids: list[int], logger: logging.Logger
) -> list[int]:
    missing = sorted(set(device_map) - set(gpu_ids))
    if missing:
        raise ArgumentError(
            f"-device_map {' '.join(map(str, missing))}: no such GPU; GPUs found: "
            f"{', '.join(map(str, gpu_ids))}"
        )
    devices = [device_map[worker % len(device_map)] for worker in range(num_worker)]
    _warn_if_shared(devices, logger)
    return devices


def _pick_free_gpus(num_worker: int, gputil: Any, logger: logging.Logger) -> list[int]:
    free = gputil.getAvailable(
        order="memory",
        limit=num_worker,
        maxLoad=MAX_LOAD_OF_FREE_GPU,
        maxMemory=MAX_MEMORY_OF_FREE_GPU,
    )
    if not free:
        logger.warning(
            "all GPUs are busy (load or memory above %d%%), falling back to CPU",
            round(MAX_LOAD_OF_FREE_GPU * 100),
        )
        return [CPU] * num_worker
    devices = [free[worker % len(free)] for worker in range(num_worker)]
    if len(free) < num_worker:
        logger.warning(
            "only %d free GPU(s) for %d workers: %s", len(free), num_worker, _sharing(devices)
        )
    return devices


def _warn_if_shared(devices: list[int], logger: logging.Logger) -> None:
    if len(set(devices)) < len(devices):
        logger.warning("workers share GPUs: %s", _sharing(devices))


def _sharing(devices: list[int]) -> str:
    """Say which workers run on which GPU, e.g. 'GPU 0: workers 0, 2; GPU 1: worker 1'."""
    workers_by_gpu: dict[int, list[int]] = {}
    for worker, device in enumerate(devices):
        workers_by_gpu.setdefault(device, []).append(worker)
    return "; ".join(
        f"GPU {device}: worker{'s' if len(workers) > 1 else ''} {', '.join(map(str, workers))}"
        for device, workers in workers_by_gpu.items()
    )


def _describe_ids(gpus: list[Any]) -> str:
    return ", ".join(str(gpu.id) for gpu in gpus) or "none"
