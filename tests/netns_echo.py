"""A TCP echo server and a TCP client driven line by line, run inside network namespaces by
tests/test_netns.py. Every client step has its own timeout, so a partition shows as a
"timeout" answer instead of a hung test.

    netns_echo.py serve ADDRESS PORT    prints "listening", then "accepted PEER" per connection
    netns_echo.py client ADDRESS PORT   reads commands on stdin, answers one line each:
        connect SECONDS   -> connected | timeout | error ERRNO_NAME
        send TEXT         -> sent
        recv SECONDS      -> got LINE | timeout
"""

from __future__ import annotations

import errno
import socket
import sys
import threading


def _say(line: str) -> None:
    print(line, flush=True)


def _echo(connection: socket.socket) -> None:
    with connection:
        while data := connection.recv(4096):
            connection.sendall(data)


def serve(address: str, port: int) -> None:
    with socket.create_server((address, port)) as server:
        _say("listening")
        while True:
            connection, peer = server.accept()
            _say(f"accepted {peer[0]}")
            threading.Thread(target=_echo, args=(connection,), daemon=True).start()


class Client:
    """One connection at a time; received bytes are kept until a whole line is there."""

    def __init__(self, address: str, port: int) -> None:
        self.target = (address, port)
        self.connection: socket.socket | None = None
        self.pending = b""

    def connect(self, seconds: str) -> str:
        connection = socket.socket()
        connection.settimeout(float(seconds))
        try:
            connection.connect(self.target)
        except socket.timeout:
            connection.close()
            return "timeout"
        except OSError as error:
            connection.close()
            return f"error {errno.errorcode.get(error.errno, error.errno)}"
        self.connection = connection
        return "connected"

    def send(self, text: str) -> str:
        self.connection.sendall(text.encode() + b"\n")
        return "sent"

    def recv(self, seconds: str) -> str:
        self.connection.settimeout(float(seconds))
        while b"\n" not in self.pending:
            try:
                data = self.connection.recv(4096)
            except socket.timeout:
                return "timeout"
            if not data:
                return "closed"
            self.pending += data
        line, _, self.pending = self.pending.partition(b"\n")
        return f"got {line.decode()}"


def client(address: str, port: int) -> None:
    session = Client(address, port)
    for command in sys.stdin:
        verb, _, argument = command.strip().partition(" ")
        _say(getattr(session, verb)(argument))


if __name__ == "__main__":
    role, address, port = sys.argv[1:]
    {"serve": serve, "client": client}[role](address, int(port))
