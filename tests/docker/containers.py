"""One running container of the project's images, on the host's network (this machine's
daemon runs without a bridge), and what the tests ask of it."""

from __future__ import annotations

import time
import uuid
from contextlib import contextmanager

from tests.docker.daemon import docker, inspect

HEALTHY_SECONDS = 300  # the image's start period is 120 s, its first probe at 30 s


class Container:
    def __init__(self, name: str) -> None:
        self.name = name

    def logs(self) -> str:
        done = docker("logs", self.name, check=False)
        return done.stdout + done.stderr

    def state(self) -> dict:
        return inspect(self.name)["State"]

    def health(self) -> str:
        return self.state().get("Health", {}).get("Status", "none")

    def wait_healthy(self, seconds: float = HEALTHY_SECONDS) -> float:
        """Wait until Docker's own health check says healthy; the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            state = self.state()
            if not state["Running"]:
                raise AssertionError(f"{self.name} exited ({state['ExitCode']}):\n{self.logs()}")
            if state.get("Health", {}).get("Status") == "healthy":
                return time.monotonic() - started
            time.sleep(2)
        raise AssertionError(
            f"{self.name} not healthy after {seconds} s: {self.state().get('Health')}\n"
            f"{self.logs()}"
        )

    def wait_for_log(self, text: str, seconds: float = HEALTHY_SECONDS) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if text in self.logs():
                return
            if not self.state()["Running"]:
                break
            time.sleep(2)
        raise AssertionError(f"{self.name}: no {text!r} in its log:\n{self.logs()}")

    def exec(self, *command: str) -> str:
        return docker("exec", self.name, *command).stdout

    def stop(self, grace_seconds: int) -> float:
        """``docker stop`` with this grace period; the seconds it took."""
        started = time.monotonic()
        docker("stop", "-t", str(grace_seconds), self.name, timeout=grace_seconds + 60)
        return time.monotonic() - started


@contextmanager
def running(image: str, *args: str, mounts: tuple[str, ...] = (), env: tuple[str, ...] = ()):
    """``docker run -d`` of the image with these entrypoint arguments; removed afterwards."""
    name = f"bert-test-{uuid.uuid4().hex[:8]}"
    options = [f"--volume={mount}" for mount in mounts] + [f"--env={pair}" for pair in env]
    docker("run", "-d", "--network=host", f"--name={name}", *options, image, *args)
    container = Container(name)
    try:
        yield container
    finally:
        docker("rm", "-f", name, check=False)
