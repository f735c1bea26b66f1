"""The network-namespace harness (tests/netns.py) itself: real TCP between namespaces, a cut
link, a blackhole route, cleanup on every way out, leftovers of a crashed run."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import netns

ECHO = str(Path(__file__).with_name("netns_echo.py"))
REPO = Path(__file__).resolve().parent.parent
PORT = 7000
ANSWER_SLACK = 5.0  # seconds beyond a step's own timeout before the test calls it hung

cluster = netns.cluster_fixture(["a", "b"])


@pytest.fixture
def need_netns() -> None:
    netns.require()


class Echo:
    """A netns_echo.py process in a host: one line out for every line in, each read bounded.
    Its output is read a byte at a time, unbuffered, so no line can wait unseen in a buffer."""

    def __init__(self, host: netns.Host, role: str, address: str) -> None:
        self.process = host.python(
            [ECHO, role, address, str(PORT)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )

    def read(self, within: float) -> str:
        deadline = time.monotonic() + within
        line = b""
        while not line.endswith(b"\n"):
            ready, _, _ = select.select(
                [self.process.stdout], [], [], max(deadline - time.monotonic(), 0)
            )
            assert ready, f"no answer within {within} s (so far {line!r})"
            byte = os.read(self.process.stdout.fileno(), 1)
            assert byte, f"the echo process ended (so far {line!r})"
            line += byte
        return line.decode().strip()

    def ask(self, command: str, seconds: float = 0.0) -> str:
        line = f"{command} {seconds:g}" if seconds else command
        self.process.stdin.write(f"{line}\n".encode())
        self.process.stdin.flush()
        return self.read(seconds + ANSWER_SLACK)


def start_server(server: netns.Host, client: netns.Host) -> Echo:
    echo = Echo(server, "serve", server.address)
    assert echo.read(ANSWER_SLACK) == "listening"
    netns.wait_for_tcp(client, server.address, PORT, timeout=5)
    assert echo.read(ANSWER_SLACK) == f"accepted {client.address}"  # the probe's connect
    return echo


def test_two_hosts_exchange_tcp_over_the_bridge(cluster):
    a, b = cluster["a"], cluster["b"]
    server = start_server(b, a)
    client = Echo(a, "client", b.address)
    assert client.ask("connect", 5) == "connected"
    assert server.read(ANSWER_SLACK) == f"accepted {a.address}"  # not loopback: over eth0
    assert client.ask("send hello") == "sent"
    assert client.ask("recv", 5) == "got hello"


def test_a_cut_host_is_partitioned_and_heals(cluster):
    a, b = cluster["a"], cluster["b"]
    server = start_server(b, a)
    session = Echo(a, "client", b.address)
    assert session.ask("connect", 5) == "connected"
    assert session.ask("send before") == "sent"
    assert session.ask("recv", 5) == "got before"

    b.cut()
    assert session.ask("send during") == "sent"
    assert session.ask("recv", 1) == "timeout"  # silence, no reset
    fresh = Echo(a, "client", b.address)
    assert fresh.ask("connect", 1) == "timeout"
    assert server.process.poll() is None  # the cut host's processes run on

    b.heal()
    assert session.ask("recv", 15) == "got during"  # TCP retransmits once the link is back
    assert Echo(a, "client", b.address).ask("connect", 5) == "connected"


def test_a_blackhole_route_fails_connects_and_stalls_connections_until_removed(cluster):
    a, b = cluster["a"], cluster["b"]
    start_server(b, a)
    session = Echo(a, "client", b.address)
    assert session.ask("connect", 5) == "connected"

    a.blackhole(b.address)
    assert Echo(a, "client", b.address).ask("connect", 5) == "error EINVAL"
    assert session.ask("send during") == "sent"
    assert session.ask("recv", 1) == "timeout"

    a.unblackhole(b.address)
    assert Echo(a, "client", b.address).ask("connect", 5) == "connected"
    assert session.ask("recv", 15) == "got during"


def test_wait_for_tcp_gives_up_on_a_closed_port(cluster):
    a, b = cluster["a"], cluster["b"]
    with pytest.raises(TimeoutError, match=f"{b.address}:{PORT} from a"):
        netns.wait_for_tcp(a, b.address, PORT, timeout=1)


def test_kill_all_reaches_processes_the_test_did_not_start(cluster):
    a = cluster["a"]
    detached = spawn_detached(a)
    assert detached in a.pids()
    assert detached in a.kill_all()
    assert a.pids() == []


def spawn_detached(host: netns.Host) -> int:
    """A sleeper in ``host`` whose parent has exited: no Popen of the test knows it."""
    code = (
        "import subprocess, sys;"
        "print(subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],"
        " start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).pid)"
    )
    done = host.run([sys.executable, "-c", code], timeout=10)
    return int(done.stdout)


def namespace_inode(namespace: str) -> int:
    return os.stat(f"/run/netns/{namespace}").st_ino


def processes_in(inodes: set[int]) -> list[int]:
    """Every process on the machine whose network namespace is one of ``inodes``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.stat(entry / "ns" / "net").st_ino in inodes:
                    found.append(int(entry.name))
            except OSError:
                continue  # gone meanwhile, or a zombie
    return found


@pytest.mark.parametrize("leaving", [None, AssertionError, KeyboardInterrupt])
def test_cleanup_leaves_no_namespace_and_no_process(need_netns, leaving):
    how = "the block ends" if leaving is None else f"{leaving.__name__} leaves the block"
    left = pytest.raises(leaving, match=f"^{how}$") if leaving else contextlib.nullcontext()
    with left, netns.Cluster(3) as made:
        names = [made.switch, *(host.namespace for host in made)]
        assert set(names) <= set(netns.namespaces())
        inodes = {namespace_inode(name) for name in names}
        for host in made:
            host.python(["-c", "import time; time.sleep(60)"])
            spawn_detached(host)
        started = processes_in(inodes)
        assert len(started) == 6
        if leaving:
            raise leaving(how)  # a failed assertion in a test, or Ctrl-C
    assert set(names).isdisjoint(netns.namespaces())
    assert processes_in(inodes) == []
    assert not any(netns._pid_alive(pid) for pid in started)


CRASHING_RUN = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from tests import netns
cluster = netns.Cluster(["x"], prefix=sys.argv[2]).__enter__()
sleeper = cluster["x"].python(["-c", "import time; time.sleep(60)"])
print(json.dumps([cluster.switch, cluster["x"].namespace, sleeper.pid]), flush=True)
time.sleep(60)
"""


def test_leftovers_of_a_crashed_run_are_removed_and_live_runs_kept(need_netns):
    prefix = f"bertnstest{os.getpid()}-"  # parallel runs of this test clean only their own
    run = subprocess.Popen(
        [sys.executable, "-c", CRASHING_RUN, str(REPO), prefix], stdout=subprocess.PIPE, text=True
    )
    ready, _, _ = select.select([run.stdout], [], [], 20)
    assert ready, "the crashing run did not report its namespaces"
    *left, sleeper = json.loads(run.stdout.readline())
    run.stdout.close()
    run.send_signal(signal.SIGKILL)  # no cleanup of its own: the namespaces stay
    run.wait(timeout=10)
    assert set(left) <= set(netns.namespaces())
    assert netns._pid_alive(sleeper)

    with netns.Cluster(["y"], prefix=prefix) as alive:
        assert sorted(netns.cleanup_leftovers(prefix)) == sorted(left)
        assert alive["y"].namespace in netns.namespaces()
    assert set(left).isdisjoint(netns.namespaces())
    assert not netns._pid_alive(sleeper)


def test_addresses_outside_the_clusters_are_refused():
    host = netns.Host("a", "unused", "10.250.1.1", "unused", "h0")
    for where, address in [(None, "10.250.1.2"), (host, "198.51.100.7"), (None, "198.51.100.7")]:
        with pytest.raises(ValueError, match="not an address the harness may reach"):
            netns.wait_for_tcp(where, address, PORT, timeout=1)


@pytest.mark.parametrize("hosts", [0, ["a", "a"], ["A"], ["a-b"], ["averyveryverylongname"]])
def test_a_cluster_refuses_bad_host_names(hosts):
    with pytest.raises(ValueError, match=r"hosts must be|host names are"):
        netns.Cluster(hosts)


@pytest.mark.parametrize(
    "ci, outcome", [("", pytest.skip.Exception), ("true", pytest.fail.Exception)]
)
def test_without_namespaces_a_test_skips_with_the_reason_but_fails_in_ci(monkeypatch, ci, outcome):
    monkeypatch.setattr(netns, "available", lambda: (False, "needs root (ip netns add)"))
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match=r"network namespaces unavailable: needs root"):
        netns.require()
