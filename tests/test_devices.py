"""Device choice per worker, with a fake GPUtil standing in for nvidia-smi."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest

from bert_serving.server.args import ArgumentError
from bert_serving.server.devices import assign_devices, gpu_memory_limit_mb, worker_environment

LOGGER = logging.getLogger("tests.devices")


@dataclass
class FakeGPU:
    id: int
    memoryTotal: float = 16000.0  # noqa: N815 (GPUtil's attribute names)
    memoryUsed: float = 0.0  # noqa: N815
    load: float = 0.0


class FakeGPUtil:
    """GPUtil's two calls used by devices.py; getAvailable filters like GPUtil does."""

    def __init__(self, *gpus: FakeGPU) -> None:
        self.gpus = list(gpus)
        self.available_calls: list[dict] = []

    def getGPUs(self) -> list[FakeGPU]:  # noqa: N802 (GPUtil's name)
        return self.gpus

    def getAvailable(self, **options) -> list[int]:  # noqa: N802 (GPUtil's name)
        self.available_calls.append(options)
        free = [
            gpu
            for gpu in self.gpus
            if gpu.load < options["maxLoad"]
            and gpu.memoryUsed / gpu.memoryTotal < options["maxMemory"]
        ]
        free.sort(key=lambda gpu: gpu.memoryUsed)
        return [gpu.id for gpu in free][: options["limit"]]


class BrokenGPUtil:
    """GPUtil on a machine where calling nvidia-smi fails."""

    def getGPUs(self):  # noqa: N802 (GPUtil's name)
        raise FileNotFoundError("nvidia-smi")


def assign(num_worker, device_map=(), use_cpu=False, gputil=None):
    return assign_devices(num_worker, list(device_map), use_cpu, LOGGER, gputil=gputil)


def test_cpu_flag_puts_every_worker_on_the_cpu():
    assert assign(3, use_cpu=True, gputil=FakeGPUtil(FakeGPU(0))) == [-1, -1, -1]


def test_a_front_without_local_workers_warns_of_nothing(caplog):
    assert assign(0, gputil=FakeGPUtil()) == []
    assert caplog.text == ""


@pytest.mark.parametrize("gputil", [FakeGPUtil(), BrokenGPUtil()], ids=["no-gpu", "no-smi"])
def test_no_gpu_falls_back_to_cpu_with_a_warning(gputil, caplog):
    assert assign(2, gputil=gputil) == [-1, -1]
    assert "no GPU found, falling back to CPU" in caplog.text


def test_real_gputil_without_nvidia_smi_falls_back_to_cpu(caplog):
    import shutil

    if shutil.which("nvidia-smi"):
        pytest.skip("this machine has nvidia-smi")
    assert assign(2) == [-1, -1]
    assert "no GPU found, falling back to CPU" in caplog.text


def test_no_gpu_wins_over_a_device_map(caplog):
    assert assign(1, device_map=[0], gputil=FakeGPUtil()) == [-1]
    assert "falling back to CPU" in caplog.text


def test_device_map_is_used_cyclically_with_a_sharing_warning(caplog):
    gputil = FakeGPUtil(FakeGPU(0), FakeGPU(1), FakeGPU(2))
    assert assign(5, device_map=[2, 0], gputil=gputil) == [2, 0, 2, 0, 2]
    assert "workers share GPUs: GPU 2: workers 0, 2, 4; GPU 0: workers 1, 3" in caplog.text


def test_longer_device_map_uses_its_first_entries_silently(caplog):
    gputil = FakeGPUtil(FakeGPU(0), FakeGPU(1), FakeGPU(2))
    assert assign(2, device_map=[1, 2, 0], gputil=gputil) == [1, 2]
    assert caplog.text == ""


def test_device_map_naming_missing_gpus_is_refused():
    gputil = FakeGPUtil(FakeGPU(0), FakeGPU(1))
    with pytest.raises(ArgumentError) as caught:
        assign(2, device_map=[3, 1, 5], gputil=gputil)
    assert isinstance(caught.value, ValueError)
    assert str(caught.value) == "-device_map 3 5: no such GPU; GPUs found: 0, 1"


def test_free_gpus_are_chosen_by_memory_within_the_load_limits():
    gputil = FakeGPUtil(
        FakeGPU(0, memoryUsed=8000), FakeGPU(1, load=0.95), FakeGPU(2, memoryUsed=100)
    )
    assert assign(2, gputil=gputil) == [2, 0]
    assert gputil.available_calls == [
        {"order": "memory", "limit": 2, "maxLoad": 0.9, "maxMemory": 0.9}
    ]


def test_fewer_free_gpus_than_workers_are_reused_with_a_warning(caplog):
    gputil = FakeGPUtil(FakeGPU(0), FakeGPU(1, load=1.0))
    assert assign(3, gputil=gputil) == [0, 0, 0]
    assert "only 1 free GPU(s) for 3 workers: GPU 0: workers 0, 1, 2" in caplog.text


def test_all_gpus_busy_falls_back_to_cpu_with_a_warning(caplog):
    gputil = FakeGPUtil(FakeGPU(0, load=0.99), FakeGPU(1, memoryUsed=15900))
    assert assign(2, gputil=gputil) == [-1, -1]
    assert "all GPUs are busy" in caplog.text
    assert "falling back to CPU" in caplog.text


def test_memory_limit_is_the_fraction_of_that_gpu():
    gputil = FakeGPUtil(FakeGPU(0, memoryTotal=8000), FakeGPU(1, memoryTotal=24000))
    assert gpu_memory_limit_mb(1, 0.5, gputil=gputil) == 12000
    assert gpu_memory_limit_mb(0, 0.25, gputil=gputil) == 2000


def test_cpu_has_no_memory_limit():
    assert gpu_memory_limit_mb(-1, 0.5, gputil=BrokenGPUtil()) is None


def test_memory_limit_of_an_unknown_gpu_is_an_error():
    with pytest.raises(ValueError, match="GPU 4 not found; GPUs found: 0"):
        gpu_memory_limit_mb(4, 0.5, gputil=FakeGPUtil(FakeGPU(0)))


def test_worker_environment_for_a_gpu():
    assert worker_environment(3) == {
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        "CUDA_VISIBLE_DEVICES": "3",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }


def test_worker_environment_for_the_cpu_hides_every_gpu():
    assert worker_environment(-1)["CUDA_VISIBLE_DEVICES"] == "-1"


def test_verbose_worker_keeps_tensorflow_logs():
    assert worker_environment(0, verbose=True)["TF_CPP_MIN_LOG_LEVEL"] == "0"
