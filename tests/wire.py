"""Raw ZeroMQ peers and process probes for the reliability tests (issue 5).

A ``RawPeer`` talks to a server without this project's client, so a test can send frames
no client would send and still see exactly what comes back. The /proc helpers find a
server's child processes and their memory without psutil (not a test dependency).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import zmq

ANSWER_WAIT_S = 5.0  # "within a few seconds" of the issue
# Python refuses int() of more digits than this (sys.get_int_max_str_digits): such an id
# is not readable as a number, so nobody can be answered on it.
MAX_ID_DIGITS = 4300


def request_id_of(frames: list[bytes]) -> int | None:
    """The request id the server can answer on, or None when identity or id is unreadable.

    The id is frame 2 of the 4-frame layout; a message with a wrong frame count still has
    it there when it has at least 3 frames (the server should answer those too).
    """
    if len(frames) < 3 or not frames[0]:
        return None
    raw = frames[2]
    if not raw or not raw.isdigit() or len(raw) > MAX_ID_DIGITS:
        return None
    return int(raw)


def is_error_answer(frames: list[bytes]) -> bool:
    """The error layout of ``protocol.error_frames``: 4 frames, "error" in the JSON, no array."""
    if len(frames) != 4 or frames[2] != b"":
        return False
    try:
        header = json.loads(frames[1])
    except ValueError:
        return False
    return isinstance(header, dict) and isinstance(header.get("error"), str)


def error_message(frames: list[bytes]) -> str:
    assert is_error_answer(frames), f"not an error answer: {[f[:60] for f in frames]}"
    return json.loads(frames[1])["error"]


class RawPeer:
    """A bare PUSH socket to ``-port`` and a SUB socket on ``-port_out``.

    It subscribes to everything by default, so answers to any identity are seen (and the
    sink, which holds answers for identities nobody listens to, sends them at once).
    """

    def __init__(self, port: int, port_out: int, subscribe: bytes = b"", ip: str = "127.0.0.1"):
        self.context = zmq.Context()
        self.push = self.context.socket(zmq.PUSH)
        self.push.setsockopt(zmq.LINGER, 0)
        self.push.setsockopt(zmq.SNDTIMEO, 10000)
        self.push.connect(f"tcp://{ip}:{port}")
        self.sub = self.context.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.SUBSCRIBE, subscribe)
        self.sub.connect(f"tcp://{ip}:{port_out}")
        self.received: list[list[bytes]] = []  # answers read while waiting for another
        self._probes = 0

    def send(self, frames: list[bytes]) -> None:
        self.push.send_multipart(frames)

    def wait_for(
        self, identity: bytes, request_id: int, timeout: float = ANSWER_WAIT_S
    ) -> list[bytes] | None:
        """The answer published to ``identity`` on ``request_id``, or None after timeout."""
        for index, frames in enumerate(self.received):
            if _answers(frames, identity, request_id):
                return self.received.pop(index)
        deadline = time.monotonic() + timeout
        while True:
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms <= 0 or not self.sub.poll(left_ms):
                return None
            frames = self.sub.recv_multipart()
            if _answers(frames, identity, request_id):
                return frames
            self.received.append(frames)
            del self.received[:-1000]  # answers to nobody we wait for: keep only the latest

    def sync(self, timeout: float = 30.0) -> None:
        """Return once the server has read everything sent so far on this PUSH socket.

        One connection's messages reach the ventilator in order, so the answer to a
        SHOW_CONFIG sent last proves the earlier messages were handled. It is re-sent a
        few times, in case the subscription had not reached the server yet.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._probes += 1
            identity = b"raw-peer-probe"
            self.send([identity, b"SHOW_CONFIG", str(self._probes).encode(), b"0"])
            if self.wait_for(identity, self._probes, 1.0) is not None:
                return
        raise AssertionError(f"the server did not answer SHOW_CONFIG within {timeout} s")

    def close(self) -> None:
        self.context.destroy(linger=0)

    def __enter__(self) -> RawPeer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _answers(frames: list[bytes], identity: bytes, request_id: int) -> bool:
    if len(frames) < 3 or frames[0] != identity:
        return False
    raw = frames[-1]
    return raw.isdigit() and len(raw) <= MAX_ID_DIGITS and int(raw) == request_id


# -- processes ------------------------------------------------------------------------------


def parent_of(pid: int) -> int | None:
    """The ppid from /proc/<pid>/stat (None when the process is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ")"
    return int(stat.rsplit(")", 1)[1].split()[1])


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, their children, ...)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            ppid = parent_of(int(entry))
            if ppid is not None:
                parents[int(entry)] = ppid
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == current]
        found += children
        frontier += children
    return found


def is_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until_gone(pids: list[int], timeout: float) -> list[int]:
    """The pids still running after ``timeout`` seconds (empty when all exited)."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [pid for pid in pids if is_running(pid)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def rss_bytes(pid: int) -> int:
    """VmRSS of one process (0 when it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def tree_rss_bytes(pid: int) -> int:
    """The resident memory of a process and all its descendants together."""
    return sum(rss_bytes(each) for each in [pid, *descendants(pid)])
