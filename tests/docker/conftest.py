"""The daemon, the stand-in bases and the two images, made once per session; the build times
and image sizes are kept and printed at the end of the run so they can be quoted."""

from __future__ import annotations

import pytest

from tests.docker import daemon

REPORT = pytest.StashKey[list]()
CPU_IMAGE = "bert-as-service:docker-test"
GPU_IMAGE = "bert-as-service:gpu-docker-test"


@pytest.fixture(scope="session")
def report(pytestconfig) -> list[str]:
    """Lines for the summary at the end of the run."""
    return pytestconfig.stash.setdefault(REPORT, [])


def pytest_terminal_summary(terminalreporter, config) -> None:
    lines = config.stash.get(REPORT, [])
    if lines:
        terminalreporter.section("docker: build times, image sizes, measurements")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def stand_ins(report) -> None:
    """A daemon and the stand-ins of the Dockerfiles' FROM images. Without them the tests
    fail, saying why: `make docker-test` asked for them, and a run that skipped every test
    would pass in CI having checked nothing."""
    try:
        daemon.ensure_daemon()
        made = daemon.ensure_stand_ins()
    except daemon.DockerUnavailableError as why:
        pytest.fail(str(why))
    for tag, seconds in made.items():
        report.append(f"made stand-in {tag} in {seconds:.0f} s")


def built(tag: str, dockerfile: str, report: list[str]) -> str:
    seconds = daemon.build(tag, daemon.REPO / "docker" / dockerfile, daemon.REPO)
    size = daemon.image_size(tag)
    report.append(f"built {tag} from docker/{dockerfile} in {seconds:.0f} s: {size / 1e6:.0f} MB")
    return tag


@pytest.fixture(scope="session")
def cpu_image(stand_ins, report) -> str:
    return built(CPU_IMAGE, "Dockerfile", report)


@pytest.fixture(scope="session")
def gpu_image(stand_ins, report) -> str:
    return built(GPU_IMAGE, "Dockerfile.gpu", report)
