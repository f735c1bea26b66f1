"""The console scripts: start (arguments, table, lifecycle) and terminate (real sockets)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import ClassVar

import pytest
import zmq

import bert_serving.server
from bert_serving.server.args import ArgumentError, get_args_parser, validate_args
from bert_serving.server.cli import start, terminate
from bert_serving.server.cli.table import format_args_table
from bert_serving.server.logger import get_logger

SCRIPTS_DIR = Path(sys.executable).parent


def command(script: str, module: str) -> list[str]:
    """The installed console script, or the module run directly when it is not installed."""
    installed = SCRIPTS_DIR / script
    return [str(installed)] if installed.exists() else [sys.executable, "-m", module]


def run_start(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*command("bert-serving-start", "bert_serving.server.cli.start"), *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )


class FakeServer(threading.Thread):
    """BertServer's surface used by the CLI: it checks the arguments as BertServer does
    (refusing or logging warnings), then is a thread that runs until closed."""

    instances: ClassVar[list[FakeServer]] = []

    def __init__(self, args, stop_at_once: bool = False) -> None:
        super().__init__(daemon=True)
        for warning in validate_args(args):
            get_logger("VENTILATOR").warning(warning)
        self.args = args
        self.is_ready = threading.Event()
        self.stop_requested = threading.Event()
        self.closed = False
        self.error = None
        if stop_at_once:
            self.stop_requested.set()
        FakeServer.instances.append(self)

    def run(self) -> None:
        self.is_ready.set()
        self.stop_requested.wait(10)

    def close(self) -> None:
        self.closed = True
        self.stop_requested.set()
        self.join()


class QuickServer(FakeServer):
    def __init__(self, args) -> None:
        super().__init__(args, stop_at_once=True)


class InterruptedServer(FakeServer):
    """Ctrl-C arrives while the command waits for the server."""

    def is_alive(self) -> bool:
        if not self.closed:
            raise KeyboardInterrupt
        return super().is_alive()


class TerminatedServer(FakeServer):
    def start(self) -> None:
        super().start()
        os.kill(os.getpid(), signal.SIGTERM)


class UnfitServer:
    def __init__(self, args) -> None:
        raise ArgumentError("-pooling_layer -13: the model has 12 layers")


@pytest.fixture
def use_server(monkeypatch):
    """Make ``from bert_serving.server import BertServer`` return the given class."""
    FakeServer.instances.clear()

    def install(server_class) -> None:
        monkeypatch.setitem(vars(bert_serving.server), "BertServer", server_class)

    return install


def test_help_lists_the_groups_and_exits_zero():
    result = run_start("--help")
    assert result.returncode == 0
    for heading in ("File Paths", "BERT Parameters", "Serving Configs", "-model_dir"):
        assert heading in result.stdout


def test_bad_value_exits_two_with_argparse_message():
    result = run_start("-max_seq_len", "2")
    assert result.returncode == 2
    assert "error: argument -max_seq_len: must be at least 4" in result.stderr


def test_cli_modules_do_not_import_tensorflow():
    code = (
        "import sys, bert_serving.server.cli.start, bert_serving.server.cli.terminate; "
        "import bert_serving.server.devices, bert_serving.server.logger; "
        "sys.exit('tensorflow' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_refused_arguments_exit_two_with_every_problem(use_server, capsys):
    use_server(QuickServer)
    assert start.main(["-num_worker", "0", "-port", "0"]) == 2
    err = capsys.readouterr().err
    assert "bert-serving-start: error: 2 problems with the arguments:" in err
    assert "  -num_worker 0: must be at least 1" in err
    assert FakeServer.instances == []


def test_single_refusal_is_one_line(use_server, capsys):
    use_server(QuickServer)
    assert start.main(["-num_worker", "0"]) == 2
    expected = "bert-serving-start: error: -num_worker 0: must be at least 1\n"
    assert capsys.readouterr().err == expected


def test_model_refusal_from_the_server_exits_two(use_server, capsys):
    use_server(UnfitServer)
    assert start.main([]) == 2
    assert "error: -pooling_layer -13: the model has 12 layers" in capsys.readouterr().err


def test_start_prints_the_table_and_runs_until_the_server_stops(use_server, capsys):
    use_server(QuickServer)
    assert start.main(["-num_worker", "2", "-fixed_embed_length"]) == 0
    err = capsys.readouterr().err
    assert "VENTILATOR" in err and "-fixed_embed_length has no effect" in err
    assert err.count("-fixed_embed_length has no effect") == 1  # checked once, said once
    assert f"bert-serving-start {bert_serving.server.__version__} arguments" in err
    assert "           num_worker = 2" in err
    assert "     pooling_strategy = REDUCE_MEAN" in err
    (server,) = FakeServer.instances
    assert server.args.num_worker == 2
    assert not server.is_alive()


def test_ctrl_c_closes_the_server(use_server):
    use_server(InterruptedServer)
    assert start.main([]) == 0
    (server,) = FakeServer.instances
    assert server.closed
    assert not server.is_alive()


def test_sigterm_closes_the_server_and_restores_the_handler(use_server):
    use_server(TerminatedServer)
    handler_before = signal.getsignal(signal.SIGTERM)
    assert start.main([]) == 0
    (server,) = FakeServer.instances
    assert server.closed
    assert signal.getsignal(signal.SIGTERM) is handler_before


def test_table_aligns_names_and_sorts_them():
    args = get_args_parser().parse_args(["-max_seq_len", "NONE"])
    lines = format_args_table(args, "title").splitlines()
    assert lines[0] == "title"
    rows = lines[2:]
    assert len(rows) == len(vars(args))
    assert len({row.index(" = ") for row in rows}) == 1
    names = [row.split(" = ")[0].strip() for row in rows]
    assert names == sorted(names)
    assert any(row.strip() == "max_seq_len = None" for row in rows)


class StandInServer(threading.Thread):
    """A ZeroMQ PULL socket like a server's request port; closes on TERMINATION if obedient."""

    def __init__(self, obedient: bool = True) -> None:
        super().__init__(daemon=True)
        self.obedient = obedient
        self.received: list[list[bytes]] = []
        self.stopped = threading.Event()
        self.context = zmq.Context()
        self.receiver = self.context.socket(zmq.PULL)
        self.port = self.receiver.bind_to_random_port("tcp://127.0.0.1")

    def run(self) -> None:
        try:
            while not self.stopped.is_set():
                if not self.receiver.poll(50):
                    continue
                frames = self.receiver.recv_multipart()
                self.received.append(frames)
                if self.obedient and frames[1] == b"TERMINATION":
                    return
        finally:
            self.receiver.close(linger=0)
            self.context.term()

    def stop(self) -> None:
        self.stopped.set()
        self.join(5)


@pytest.fixture
def stand_in():
    servers: list[StandInServer] = []

    def launch(obedient: bool = True) -> StandInServer:
        server = StandInServer(obedient)
        server.start()
        servers.append(server)
        return server

    yield launch
    for server in servers:
        server.stop()


def test_terminate_sends_the_1_10_frames_and_confirms(stand_in, capsys):
    server = stand_in()
    code = terminate.main(["-ip", "127.0.0.1", "-port", str(server.port), "-timeout", "3000"])
    assert code == 0
    assert server.received == [[b"0", b"TERMINATION", b"0", b"0"]]
    assert capsys.readouterr().out == f"server at 127.0.0.1:{server.port} terminated\n"


def test_terminate_reports_a_server_that_keeps_listening(stand_in, capsys):
    server = stand_in(obedient=False)
    began = time.monotonic()
    code = terminate.main(["-ip", "127.0.0.1", "-port_in", str(server.port), "-timeout", "300"])
    assert code == 1
    assert time.monotonic() - began < 3
    assert f"127.0.0.1:{server.port} still listens after 300 ms" in capsys.readouterr().err
    assert server.received == [[b"0", b"TERMINATION", b"0", b"0"]]


def test_terminate_without_a_server_fails_fast(capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    began = time.monotonic()
    assert terminate.main(["-ip", "127.0.0.1", "-port", str(port), "-timeout", "2000"]) == 1
    assert time.monotonic() - began < 1
    assert f"no server listening at 127.0.0.1:{port}" in capsys.readouterr().err


def test_terminate_help_runs_as_a_script():
    result = subprocess.run(
        [*command("bert-serving-terminate", "bert_serving.server.cli.terminate"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert "-timeout" in result.stdout
