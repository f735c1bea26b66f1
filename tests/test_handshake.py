"""A refused ZeroMQ handshake (CURVE settings that differ) is an error naming the cause,
raised at once instead of after the timeout: by the client and by bert-serving-terminate.

"At once" is shown without timing: the clients wait forever (timeout=-1) or far longer
than the test's own timeout, so only the handshake error can end the wait.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from bert_serving.client import AsyncBertClient, BertClient, HandshakeError, handshake
from bert_serving.client.handshake import (
    NO_DETAIL_FAILURES_TO_RAISE,
    HandshakeWatch,
    KeyOptions,
    failure_message,
)
from tests import test_security

keys = test_security.keys  # the fixture of the key files, shared
CLIENT = KeyOptions()
NO_DETAIL = zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
PROTOCOL = zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
MISMATCH = zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH


# ---------------------------------------------------------------- the messages


@pytest.mark.parametrize(
    "name",
    [
        "EVENT_HANDSHAKE_FAILED_NO_DETAIL",
        "EVENT_HANDSHAKE_SUCCEEDED",
        "EVENT_HANDSHAKE_FAILED_PROTOCOL",
        "EVENT_HANDSHAKE_FAILED_AUTH",
        "PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH",
    ],
)
def test_spelled_out_constants_are_libzmqs(name: str) -> None:
    assert getattr(handshake, name) == getattr(zmq, name)


def test_a_plain_client_of_a_curve_server_is_told_to_pass_the_keys() -> None:
    text = failure_message(PROTOCOL, MISMATCH, "tcp://h:1", uses_curve=False, options=CLIENT)
    assert "requires CURVE" in text
    assert "curve_server_key" in text and "curve_client_keys" in text


def test_a_curve_client_of_a_plain_server_is_told_to_drop_the_keys() -> None:
    text = failure_message(PROTOCOL, MISMATCH, "tcp://h:1", uses_curve=True, options=CLIENT)
    assert "does not use CURVE" in text and "leave out curve_server_key" in text


def test_a_refused_client_key_names_the_servers_folder() -> None:
    text = failure_message(
        zmq.EVENT_HANDSHAKE_FAILED_AUTH, 400, "tcp://h:1", uses_curve=True, options=CLIENT
    )
    assert "CURVE key" in text and "curve_client_keys" in text and "400" in text


def test_a_dropped_handshake_blames_the_server_key_only_under_curve() -> None:
    text = failure_message(NO_DETAIL, 32, "tcp://h:1", uses_curve=True, options=CLIENT)
    assert "curve_server_key" in text and "public key" in text
    assert failure_message(NO_DETAIL, 32, "tcp://h:1", uses_curve=False, options=CLIENT) is None


def test_other_protocol_errors_point_at_ip_and_ports() -> None:
    text = failure_message(PROTOCOL, 0x10000001, "tcp://h:1", uses_curve=False, options=CLIENT)
    assert "protocol error 0x10000001" in text and "ports" in text


def test_the_command_line_spelling_of_the_options() -> None:
    options = KeyOptions("-curve_server_key", "-curve_client_keys")
    text = failure_message(PROTOCOL, MISMATCH, "tcp://h:1", uses_curve=False, options=options)
    assert "pass -curve_server_key" in text


# ---------------------------------------------------------------- the watch, on bare sockets


class _FakeMonitor:
    """Stands in for a monitor socket: hands out queued events."""

    def __init__(self, events) -> None:
        self.events = list(events)

    def poll(self, timeout: int) -> int:
        return zmq.POLLIN if self.events else 0


def _watch_with_events(events, uses_curve: bool, monkeypatch) -> HandshakeWatch:
    monitor = _FakeMonitor(
        {"event": event, "value": value, "endpoint": b"tcp://h:1"} for event, value in events
    )
    monkeypatch.setattr(
        "bert_serving.client.handshake.recv_monitor_message", lambda sock: sock.events.pop(0)
    )
    watch = HandshakeWatch(uses_curve)
    socket = type("Monitored", (), {"get_monitor_socket": lambda self, events: monitor})()
    watch.watch(socket)
    return watch


def test_dropped_handshakes_raise_only_when_repeated(monkeypatch) -> None:
    failures = [(NO_DETAIL, 32)] * (NO_DETAIL_FAILURES_TO_RAISE - 1)
    _watch_with_events(failures, True, monkeypatch).check()  # a server restarting, say
    with pytest.raises(HandshakeError, match="curve_server_key"):
        _watch_with_events([*failures, (NO_DETAIL, 32)], True, monkeypatch).check()
    success = (zmq.EVENT_HANDSHAKE_SUCCEEDED, 0)
    _watch_with_events([*failures, success, *failures], True, monkeypatch).check()


def test_a_refusal_raises_on_every_check_until_a_handshake_succeeds(monkeypatch) -> None:
    watch = _watch_with_events([(PROTOCOL, MISMATCH)], False, monkeypatch)
    for _ in range(2):
        with pytest.raises(HandshakeError, match="requires CURVE"):
            watch.check()
    assert not watch.all_succeeded


@pytest.fixture()
def curve_pull(keys):
    """A CURVE PULL socket that accepts only the allowed client key, as the server does."""
    context = zmq.Context()
    authenticator = ThreadAuthenticator(context)
    authenticator.start()
    authenticator.configure_curve(domain="*", location=keys["allowed"])
    server = context.socket(zmq.PULL)
    public, secret = zmq.auth.load_certificate(keys["server"]["secret"])
    server.curve_secretkey, server.curve_publickey, server.curve_server = secret, public, True
    port = server.bind_to_random_port("tcp://127.0.0.1")
    yield context, port
    server.close(0)
    authenticator.stop()
    context.term()


@pytest.mark.parametrize(
    "client_keys, server_key, message",
    [
        (None, None, "requires CURVE"),
        ("client", "intruder", "not the public key"),
        ("intruder", "server", "refused this client's CURVE key"),
    ],
    ids=["no-keys", "wrong-server-key", "unlisted-client-key"],
)
def test_watch_raises_for_each_refusal(curve_pull, keys, client_keys, server_key, message):
    from bert_serving.client.security import curve_client_options

    context, port = curve_pull
    curve = curve_client_options(
        keys[server_key]["public"] if server_key else None,
        keys[client_keys]["secret"] if client_keys else None,
    )
    push = context.socket(zmq.PUSH)
    for option, value in curve.items():
        push.setsockopt(option, value)
    watch = HandshakeWatch(uses_curve=bool(curve))
    watch.watch(push)
    push.connect(f"tcp://127.0.0.1:{port}")
    try:
        with pytest.raises(HandshakeError, match=message):
            watch.wait_until_connected(60_000)
    finally:
        push.close(0)
        watch.close()


def test_watch_reports_a_handshake_that_succeeds(curve_pull, keys):
    from bert_serving.client.security import curve_client_options

    context, port = curve_pull
    push = context.socket(zmq.PUSH)
    for option, value in curve_client_options(
        keys["server"]["public"], keys["client"]["secret"]
    ).items():
        push.setsockopt(option, value)
    watch = HandshakeWatch(uses_curve=True)
    watch.watch(push)
    push.connect(f"tcp://127.0.0.1:{port}")
    try:
        assert watch.wait_until_connected(60_000)
        watch.check()
    finally:
        push.close(0)
        watch.close()


# ---------------------------------------------------------------- real servers


# setting -> (client options, the client's message, bert-serving-terminate's message)
WRONG_SETTINGS = {
    "no-keys": ({}, "requires CURVE", "the peer requires CURVE: pass -curve_server_key"),
    "wrong-server-key": (
        {"curve_server_key": "intruder.public", "curve_client_keys": "client.secret"},
        "curve_server_key is most likely not the public key",
        "-curve_server_key is not the peer's public key",
    ),
    "unlisted-client-key": (
        {"curve_server_key": "server.public", "curve_client_keys": "intruder.secret"},
        "refused this client's CURVE key",
        "refused this side's CURVE key: pass -curve_client_keys",
    ),
}


async def _encode_async(checked: bool, **options) -> None:
    async with AsyncBertClient(ignore_all_checks=not checked, **options) as client:
        await client.encode(["a secret sentence"])


def _resolve(options: dict, keys) -> dict:
    """'intruder.public' -> that key file's path."""
    return {
        option: keys[name.split(".")[0]][name.split(".")[1]] for option, name in options.items()
    }


@pytest.mark.slow
@pytest.mark.timeout(180)  # the clients wait forever unless the handshake error ends it
def test_client_and_terminate_name_the_cause_at_once(google_model_dir, keys):
    with test_security.allowlisting_server(google_model_dir, keys) as server:
        ports = {"port": server.args.port, "port_out": server.args.port_out}
        for name, (options, message, terminate_message) in WRONG_SETTINGS.items():
            kwargs = _resolve(options, keys)
            # the config request: it would time out after 30 s, the default for commands
            with pytest.raises(HandshakeError, match=message):
                BertClient(timeout=-1, **ports, **kwargs)
            # an encoding request with no limit at all: only the handshake error ends it
            unchecked = BertClient(timeout=-1, ignore_all_checks=True, **ports, **kwargs)
            with unchecked, pytest.raises(HandshakeError, match=message):
                unchecked.encode(["a secret sentence"])
            for checked in (True, False):  # the asyncio client, its handshake and an encode
                with pytest.raises(HandshakeError, match=message):
                    asyncio.run(_encode_async(checked, timeout=-1, **ports, **kwargs))
            flags = [f"-{option}" for option in kwargs]
            command = _terminate(
                server.args.port, *(x for p in zip(flags, kwargs.values()) for x in p)
            )
            assert command.returncode == 1, name
            assert "cannot shut down the server" in command.stderr
            assert terminate_message in command.stderr
        with BertClient(
            timeout=60_000,
            curve_server_key=keys["server"]["public"],
            curve_client_keys=keys["client"]["secret"],
            **ports,
        ) as bc:
            assert bc.encode(["still serving"]).shape == (1, 32)
        shutdown = _terminate(
            server.args.port,
            "-curve_server_key",
            keys["server"]["public"],
            "-curve_client_keys",
            keys["client"]["secret"],
        )
        assert shutdown.returncode == 0, shutdown.stderr
        assert "terminated" in shutdown.stdout


def _terminate(port: int, *extra: str) -> subprocess.CompletedProcess:
    """bert-serving-terminate with a timeout (10 min) that the test never waits out."""
    command = [
        sys.executable,
        "-m",
        "bert_serving.server.cli.terminate",
        "-ip",
        "127.0.0.1",
        "-port",
        str(port),
        "-timeout",
        "600000",
        *extra,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)
