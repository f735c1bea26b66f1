"""Several "hosts" on one machine, for tests of workers on other hosts, made of Linux network
namespaces.

Why namespaces: a test of remote workers needs real TCP between addresses that are not the
loopback, and a network it can break on purpose (a link cut mid-stream, a route that eats
packets) while the processes on either side keep running. A network namespace is a private
copy of the kernel's network stack: its own interfaces, addresses, routes and sockets. Processes
started in it see only that. So one machine can hold a front and two workers that talk to each
other over real interfaces, and a test can cut one of them off without touching anything else.

Topology of ``Cluster(["front", "w1", "w2"])`` (names carry the prefix, the pid and a counter, so
two runs, in parallel or leftover from a crash, never share one)::

     namespace bertns-<pid>-<n>-front   bertns-<pid>-<n>-w1      bertns-<pid>-<n>-w2
       lo, eth0 10.250.1.1/24          lo, eth0 10.250.1.2/24   lo, eth0 10.250.1.3/24
              |  veth                         |  veth                   |  veth
     namespace bertns-<pid>-<n>-switch: h0 -------- br0 (bridge) ------- h1, h2

The bridge lives in a "switch" namespace of its own, and every veth is created there with its
other end put straight into a host namespace: the machine's own (root) namespace gets no
interface, address or route, ever. The host namespaces have no default route, so nothing in them
can reach any address but the cluster's own and their loopback.

Processes in a host share the machine's files, users and pids (a test's tmp_path and model
folders work as they are; ``os.kill(process.pid, signal.SIGSTOP)`` stops one); only the network
is their own.

Breaking the network:

- ``host.cut()`` sets the host's port on the switch down: its packets go nowhere and nothing
  reaches it, but its processes and their sockets stay as they were. To the peers this is a
  partition (or a host that vanished): connects and sends time out, nobody gets a reset.
  ``host.heal()`` sets the port up again; TCP connections that were not given up resume at
  their next retransmission (exponential backoff: after a cut of ~2 s, ~1.5 s here).
- ``host.blackhole(address)`` adds a blackhole route to one address inside the host: new connects
  from it fail at once (the kernel answers EINVAL), packets of open connections are dropped.
- ``host.kill_all()`` kills every process in the host's namespace (``ip netns pids``), also ones
  the test did not start itself (a worker's children).

Use (as root; ``available()`` says why not, for a visible skip)::

    from tests import netns

    netns.require()  # a skip with the reason where namespaces cannot be made
    with netns.Cluster(["front", "w1"]) as cluster:
        front, worker = cluster["front"], cluster["w1"]
        server = front.python(["-m", "some.server", "--ip", front.address, "--port", "5555"])
        netns.wait_for_tcp(worker, front.address, 5555, timeout=10)
        worker.cut()            # partition the worker; its processes keep running
        worker.heal()

Leaving the block, normally, on a failed assertion or on Ctrl-C, kills every process in the
namespaces and deletes them. ``cleanup_leftovers()`` deletes the namespaces of earlier runs whose
process is gone (a run killed with SIGKILL cannot clean up after itself); it never touches a
namespace of a run that is still alive, nor one without the harness's prefix.
``cluster_fixture`` turns a cluster into a pytest fixture; ``require()`` skips a test with the
reason where clusters cannot be made (and fails it in CI, which must run them).
"""

from __future__ import annotations

import atexit
import functools
import ipaddress
import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

PREFIX = "bertns-"
# 10.250.<subnet>.0/24: private, and only ever configured inside namespaces made here
NETWORK = ipaddress.ip_network("10.250.0.0/16")
IP_TIMEOUT = 10.0  # seconds for one `ip` command; none may hang a test
KILL_TIMEOUT = 5.0  # seconds for killed processes to leave a namespace
HOST_NAME = re.compile(r"[a-z][a-z0-9]{0,11}")

_clusters = itertools.count()


class NetnsError(RuntimeError):
    """An `ip` command failed; the message holds the command and what it printed."""


def _ip(*args: str, timeout: float = IP_TIMEOUT) -> str:
    argv = ["ip", *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise NetnsError(f"{' '.join(argv)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def namespaces() -> list[str]:
    """The names of all named network namespaces on this machine (``ip netns list``)."""
    return [line.split()[0] for line in _ip("netns", "list").splitlines() if line.strip()]


def namespace_pids(namespace: str) -> list[int]:
    """The processes inside one namespace (``ip netns pids``)."""
    return [int(word) for word in _ip("netns", "pids", namespace).split()]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Polls ``condition`` until it holds; TimeoutError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(0.05)


def _kill_namespace_processes(namespace: str) -> list[int]:
    """SIGKILLs everything in ``namespace`` until it is empty; the pids it killed."""
    killed: list[int] = []

    def emptied() -> bool:
        pids = namespace_pids(namespace)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            killed.append(pid)
        return not pids

    # a process may fork while it is being killed: kill again until none is left
    wait_until(emptied, KILL_TIMEOUT, f"processes in {namespace} to exit")
    return killed


def _delete_namespace(namespace: str) -> None:
    _kill_namespace_processes(namespace)
    _ip("netns", "delete", namespace)


class Host:
    """One namespace on the cluster's bridge: its processes, its link and its routes."""

    def __init__(self, name: str, namespace: str, address: str, switch: str, port: str) -> None:
        self.name = name
        self.namespace = namespace
        self.address = address
        self._switch = switch
        self._port = port  # its veth end in the switch namespace
        self._processes: list[subprocess.Popen] = []

    def __repr__(self) -> str:
        return f"Host({self.name!r}, {self.address}, namespace={self.namespace!r})"

    def popen(self, argv: Sequence[str], **kwargs) -> subprocess.Popen:
        """Starts ``argv`` in this host (``ip netns exec``, which then becomes ``argv``, so the
        Popen's pid is the command's). The environment and working directory are inherited."""
        process = subprocess.Popen(["ip", "netns", "exec", self.namespace, *argv], **kwargs)
        self._processes.append(process)
        return process

    def python(self, args: Sequence[str], **kwargs) -> subprocess.Popen:
        """Starts this interpreter (``sys.executable``, so the same venv) with ``args`` here."""
        return self.popen([sys.executable, *args], **kwargs)

    def run(self, argv: Sequence[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
        """Runs ``argv`` here to its end, output captured as text; killed after ``timeout`` s
        (subprocess.TimeoutExpired)."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        argv = ["ip", "netns", "exec", self.namespace, *argv]
        return subprocess.run(argv, timeout=timeout, **kwargs)

    def cut(self) -> None:
        """Partitions this host: its port on the switch goes down; its processes run on."""
        _ip("-n", self._switch, "link", "set", self._port, "down")

    def heal(self) -> None:
        """Joins this host to the bridge again after ``cut``."""
        _ip("-n", self._switch, "link", "set", self._port, "up")

    def blackhole(self, address: str) -> None:
        """Drops everything this host sends to ``address`` (a blackhole route here)."""
        _ip("-n", self.namespace, "route", "add", "blackhole", f"{address}/32")

    def unblackhole(self, address: str) -> None:
        _ip("-n", self.namespace, "route", "del", "blackhole", f"{address}/32")

    def pids(self) -> list[int]:
        return namespace_pids(self.namespace)

    def kill_all(self) -> list[int]:
        """SIGKILLs every process in this namespace, started here or not; the pids killed."""
        killed = _kill_namespace_processes(self.namespace)
        for process in self._processes:
            process.wait(timeout=KILL_TIMEOUT)  # reaps our own children: no zombies
        return killed

    def _close_pipes(self) -> None:
        for process in self._processes:
            for pipe in (process.stdin, process.stdout, process.stderr):
                if pipe is not None:
                    pipe.close()


class Cluster:
    """Hosts (network namespaces) on one bridge in a switch namespace; a context manager that
    deletes them all, with their processes, when it is left for any reason."""

    def __init__(self, hosts: int | Sequence[str] = 2, *, subnet: int = 1, prefix: str = PREFIX):
        names = [f"h{index}" for index in range(hosts)] if isinstance(hosts, int) else list(hosts)
        if not names or len(set(names)) != len(names) or len(names) > 250:
            raise ValueError(f"hosts must be 1 to 250 distinct names, not {names}")
        bad = [name for name in names if not HOST_NAME.fullmatch(name)]
        if bad:
            raise ValueError(f"host names are [a-z][a-z0-9]{{0,11}}, not {bad}")
        if not 0 <= subnet <= 255:
            raise ValueError(f"subnet is the third byte of 10.250.x.0/24, not {subnet}")
        stem = f"{prefix}{os.getpid()}-{next(_clusters)}-"
        self.switch = f"{stem}switch"
        self.hosts = [
            Host(name, f"{stem}{name}", f"10.250.{subnet}.{index + 1}", self.switch, f"h{index}")
            for index, name in enumerate(names)
        ]
        self._made: list[str] = []  # namespaces created so far, deleted by close()

    def __getitem__(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def __iter__(self) -> Iterator[Host]:
        return iter(self.hosts)

    def __enter__(self) -> Cluster:
        atexit.register(self.close)  # a safety net should the block never be left
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _add_namespace(self, namespace: str) -> None:
        _ip("netns", "add", namespace)
        self._made.append(namespace)
        _ip("-n", namespace, "link", "set", "lo", "up")

    def _build(self) -> None:
        self._add_namespace(self.switch)
        _ip("-n", self.switch, "link", "add", "name", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        for host in self.hosts:
            self._add_namespace(host.namespace)
            # made inside the switch namespace, its other end moved straight into the host's
            _ip("-n", self.switch, "link", "add", "name", host._port, "type", "veth",
                "peer", "name", "eth0", "netns", host.namespace)  # fmt: skip
            _ip("-n", self.switch, "link", "set", host._port, "master", "br0", "up")
            _ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", "eth0")
            _ip("-n", host.namespace, "link", "set", "eth0", "up")

    def close(self) -> None:
        """Kills the processes in every namespace made, then deletes them; safe to call twice.
        Every namespace is tried even when one fails; the first failure is raised at the end."""
        failures: list[Exception] = []
        for host in self.hosts:
            if host.namespace in self._made:
                try:
                    host.kill_all()
                except Exception as error:
                    failures.append(error)
            host._close_pipes()
        for namespace in reversed(self._made):
            try:
                _delete_namespace(namespace)
            except Exception as error:
                failures.append(error)
        self._made.clear()
        atexit.unregister(self.close)  # only now: an interrupted close is retried at exit
        if failures:
            raise failures[0]


def _pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"  # a zombie is dead, only not yet reaped


def cleanup_leftovers(prefix: str = PREFIX) -> list[str]:
    """Deletes (processes first) the namespaces named ``<prefix><pid>-...`` whose run, the
    process ``pid``, is gone; the names deleted. Live runs and other namespaces are left be.
    (Runs are told apart by pid, so all runs must share one pid namespace, as on this VM.)"""
    owner = re.compile(rf"{re.escape(prefix)}(\d+)-")
    deleted = []
    for namespace in namespaces():
        match = owner.match(namespace)
        if match and not _pid_alive(int(match.group(1))):
            _delete_namespace(namespace)
            deleted.append(namespace)
    return deleted


@functools.lru_cache(maxsize=None)
def available() -> tuple[bool, str]:
    """Whether clusters can be made here: root, ``ip``, and a namespace holding a bridge and a
    veth pair, tried for real. The reason when not, for a visible skip."""
    if os.geteuid() != 0:
        return False, "needs root (ip netns add)"
    try:
        _ip("-V")
    except FileNotFoundError:
        return False, "the ip command is missing (Debian package iproute2)"
    probe = f"{PREFIX}{os.getpid()}-probe"
    try:
        _ip("netns", "add", probe)
    except NetnsError as error:
        return False, f"cannot make a network namespace: {error}"
    try:
        _ip("-n", probe, "link", "add", "name", "br0", "type", "bridge")
        _ip("-n", probe, "link", "add", "name", "va", "type", "veth", "peer", "name", "vb")
    except NetnsError as error:
        return False, f"no bridge or veth inside a namespace: {error}"
    finally:
        _ip("netns", "delete", probe)
    return True, ""


def require() -> None:
    """Skips the calling test, with the reason, where clusters cannot be made; fails it in CI
    (CI=true), which runs as root, so that the multi-host tests never go quietly missing there."""
    import pytest

    ok, why = available()
    if ok:
        return
    message = f"network namespaces unavailable: {why}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI must run the multi-host tests)", pytrace=False)
    pytest.skip(message)


def cluster_fixture(
    hosts: int | Sequence[str] = 2, *, scope: str = "function", **options
) -> Callable[[], Iterator[Cluster]]:
    """A pytest fixture yielding ``Cluster(hosts, **options)``, skipped (see ``require``) where
    clusters cannot be made, after clearing leftovers of crashed runs. In a test module:
    ``cluster = netns.cluster_fixture(["a", "b"])``, then ``def test_x(cluster): ...``."""
    import pytest

    @pytest.fixture(scope=scope)
    def cluster():
        require()
        cleanup_leftovers(options.get("prefix", PREFIX))
        with Cluster(hosts, **options) as made:
            yield made

    return cluster


def _check_address(host: Host | None, address: str) -> None:
    """Traffic goes only to loopback or, from inside a host, to the clusters' addresses."""
    ip = ipaddress.ip_address(address)
    if not (ip.is_loopback or (host is not None and ip in NETWORK)):
        where = "the root namespace" if host is None else host.name
        raise ValueError(f"{address} is not an address the harness may reach from {where}")


def _connect_until(address: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        try:
            with socket.create_connection((address, port), timeout=min(left, 1.0)):
                return True
        except OSError:
            time.sleep(min(0.05, max(deadline - time.monotonic(), 0)))


def wait_for_tcp(host: Host | None, address: str, port: int, timeout: float) -> None:
    """Waits until a TCP connect to ``address:port`` succeeds from inside ``host`` (from this
    process when None: loopback only); TimeoutError after ``timeout`` s."""
    _check_address(host, address)
    if host is None:
        reached = _connect_until(address, port, timeout)
    else:
        probe = [__file__, "connect", address, str(port), str(timeout)]
        reached = host.python(probe).wait(timeout=timeout + IP_TIMEOUT) == 0
    if not reached:
        where = "here" if host is None else f"from {host.name}"
        raise TimeoutError(f"no TCP connect to {address}:{port} {where} within {timeout} s")


if __name__ == "__main__":  # the probe wait_for_tcp runs inside a namespace
    _, command, address, port, timeout = sys.argv
    assert command == "connect", command
    sys.exit(0 if _connect_until(address, int(port), float(timeout)) else 1)
