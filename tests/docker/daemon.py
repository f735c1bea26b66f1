"""A Docker daemon and stand-in base images, so that the project's images build here.

No image registry can be reached from this machine (or from CI), so ``FROM
python:3.11.9-slim-bookworm`` cannot be pulled. Instead a Debian bookworm root file system
is made with ``debootstrap`` from the mirror apt already uses, imported as an image, and
dressed up as each ``FROM`` image under that image's exact name. The Dockerfiles then build
unchanged, exactly as a user with a registry builds them. The stand-ins carry this machine's
CA bundle: HTTPS to the package index from inside a build is verified against it.

Everything is cached in the daemon: a stand-in whose tag exists is not made again.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
DAEMON_LOG = Path(tempfile.gettempdir()) / "bert-as-service-dockerd.log"
DAEMON_ARGS = ("--iptables=false", "--ip6tables=false", "--bridge=none")
STORAGE_DRIVERS = ("overlay2", "vfs")
DAEMON_START_SECONDS = 60
MINBASE = "bert-as-service-test/bookworm-minbase:debootstrap"

# what the official python image offers: python and pip on PATH, pip free to install
# system-wide (Debian's own marker that forbids it is removed)
PYTHON_STAND_IN = """\
FROM {base}
RUN apt-get update \\
    && apt-get install -y --no-install-recommends python3 python3-pip python3-venv \\
    && rm -rf /var/lib/apt/lists/* /usr/lib/python3.11/EXTERNALLY-MANAGED \\
    && ln -s /usr/bin/python3 /usr/local/bin/python && ln -s /usr/bin/pip3 /usr/local/bin/pip
{ca}
CMD ["python3"]
"""

# the CUDA base has no Python: the GPU Dockerfile installs it with apt, so this one has none
CUDA_STAND_IN = """\
FROM {base}
{ca}
CMD ["bash"]
"""

# after any apt-get: installing ca-certificates rebuilds the bundle from the files in
# /usr/local/share/ca-certificates, where this machine's bundle is therefore kept as well
CA_STEPS = """\
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY ca-certificates.crt /usr/local/share/ca-certificates/this-machine.crt
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DEFAULT_TIMEOUT=180 LANG=C.UTF-8
LABEL org.opencontainers.image.description="a stand-in made by tests/docker/daemon.py"\
"""

STAND_INS = {
    "python:3.11.9-slim-bookworm": PYTHON_STAND_IN,
    "nvidia/cuda:12.6.3-base-ubuntu24.04": CUDA_STAND_IN,
}


class DockerUnavailableError(RuntimeError):
    """No daemon could be reached or started, or a tool is missing (the tests fail, saying
    which)."""


def docker_cli() -> str:
    """Debian's CLI, which comes with its dockerd (same API version, BuildKit built in),
    else whichever ``docker`` is on PATH."""
    debian = Path("/usr/bin/docker")
    found = str(debian) if debian.exists() else shutil.which("docker")
    if found is None:
        raise DockerUnavailableError("no docker CLI: apt-get install docker.io")
    return found


def docker(*args: str, timeout: float = 120, check: bool = True, **options):
    """Run the docker CLI; its output as text."""
    done = subprocess.run(
        [docker_cli(), *args], capture_output=True, text=True, timeout=timeout, **options
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])} failed: {done.stderr.strip()}")
    return done


def daemon_answers() -> bool:
    try:
        return docker("version", "--format", "{{.Server.Version}}", check=False).returncode == 0
    except (subprocess.TimeoutExpired, DockerUnavailableError):
        return False


def ensure_daemon() -> None:
    """Reuse a running daemon, else start dockerd (overlay2, else vfs) and leave it running
    for the next run, as a system daemon is."""
    if daemon_answers():
        return
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise DockerUnavailableError("no dockerd: apt-get install docker.io")
    for driver in STORAGE_DRIVERS:
        with DAEMON_LOG.open("ab") as log:
            process = subprocess.Popen(
                [dockerd, f"--storage-driver={driver}", *DAEMON_ARGS],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + DAEMON_START_SECONDS
        while time.monotonic() < deadline and process.poll() is None:
            if daemon_answers():
                return
            time.sleep(1)
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
    raise DockerUnavailableError(f"dockerd did not start with {STORAGE_DRIVERS}; see {DAEMON_LOG}")


def image_exists(tag: str) -> bool:
    return docker("image", "inspect", tag, check=False).returncode == 0


def image_size(tag: str) -> int:
    """The image's size in bytes, its base's layers included."""
    return int(docker("image", "inspect", "--format", "{{.Size}}", tag).stdout)


def apt_mirror() -> str:
    """The Debian mirror apt uses here (deb822 ``.sources`` or one-line ``.list`` files)."""
    files = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in files:
        if not path.is_file() or path.suffix not in (".list", ".sources"):
            continue
        for uri in re.findall(r"(?:^URIs:|^deb)\s+(\S+)", path.read_text(), re.MULTILINE):
            if uri.rstrip("/").endswith("/debian"):
                return uri
    raise DockerUnavailableError("no Debian mirror in /etc/apt/sources.list*")


def build(tag: str, dockerfile: Path, context: Path, timeout: float = 3600) -> float:
    """``docker build`` with BuildKit on the host's network; the seconds it took."""
    started = time.monotonic()
    docker(
        "build",
        "--network=host",
        "-t",
        tag,
        "-f",
        str(dockerfile),
        str(context),
        timeout=timeout,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
    )
    return time.monotonic() - started


def make_minbase() -> None:
    """debootstrap's minbase of bookworm, imported as an image."""
    if shutil.which("debootstrap") is None:
        raise DockerUnavailableError("no debootstrap: apt-get install debootstrap")
    with tempfile.TemporaryDirectory(dir="/var/tmp") as scratch:
        root = Path(scratch) / "rootfs"
        subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", str(root), apt_mirror()],
            check=True,
            capture_output=True,
            timeout=1800,
        )
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        try:
            docker("import", "-", MINBASE, stdin=tar.stdout, timeout=600)
        finally:
            tar.stdout.close()
            tar.wait()


def ensure_stand_ins() -> dict[str, float]:
    """Make whatever stand-in is missing; the seconds each one made here took."""
    made = {}
    missing = [tag for tag in STAND_INS if not image_exists(tag)]
    if not missing:
        return made
    started = time.monotonic()
    if not image_exists(MINBASE):
        make_minbase()
        made[MINBASE] = time.monotonic() - started
    with tempfile.TemporaryDirectory() as context:
        shutil.copyfile(CA_BUNDLE, Path(context) / "ca-certificates.crt")
        for tag in missing:
            dockerfile = Path(context) / "Dockerfile"
            dockerfile.write_text(STAND_INS[tag].format(base=MINBASE, ca=CA_STEPS))
            made[tag] = build(tag, dockerfile, Path(context), timeout=1800)
    return made


def inspect(container: str) -> dict:
    return json.loads(docker("inspect", container).stdout)[0]
