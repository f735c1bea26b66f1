"""Role loggers: line format, levels, colors, and one handler however often they are fetched."""

from __future__ import annotations

import io
import logging
import re
import uuid

import pytest

from bert_serving.server.logger import get_logger, role_color

THIS_FILE = "test_logger.py"


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def unique_role(prefix: str = "ROLE") -> str:
    """A role no other test configured, since loggers live for the whole process."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def test_line_has_level_initial_role_file_and_line(capsys):
    role = unique_role()
    get_logger(role).info("ready")
    err = capsys.readouterr().err
    assert re.fullmatch(rf"I:{role}:\[{THIS_FILE}:\d+\] ready\n", err)


def test_info_by_default_and_debug_when_verbose(capsys):
    role = unique_role()
    logger = get_logger(role)
    logger.debug("hidden")
    logger.warning("shown")
    assert capsys.readouterr().err.startswith(f"W:{role}:")
    get_logger(role, verbose=True).debug("now shown")
    assert capsys.readouterr().err.startswith(f"D:{role}:")


def test_fetching_twice_adds_no_second_handler(capsys):
    role = unique_role()
    first = get_logger(role)
    second = get_logger(role)
    assert first is second
    assert len(second.handlers) == 1
    second.info("once")
    assert capsys.readouterr().err.count("once") == 1


def test_does_not_propagate_to_root(caplog):
    role = unique_role()
    with caplog.at_level(logging.INFO):
        get_logger(role).info("private")
    assert "private" not in caplog.text


def test_no_color_when_stderr_is_not_a_terminal(capsys):
    get_logger(unique_role("SINK")).info("plain")
    assert "\x1b[" not in capsys.readouterr().err


def test_color_on_a_terminal(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    terminal = FakeTerminal()
    monkeypatch.setattr("sys.stderr", terminal)
    role = unique_role()
    get_logger(role, color="red").error("boom")
    assert f"E:\x1b[31m{role}\x1b[0m:[{THIS_FILE}:" in terminal.getvalue()


def test_no_color_setting_wins_over_a_terminal(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    terminal = FakeTerminal()
    monkeypatch.setattr("sys.stderr", terminal)
    role = unique_role()
    get_logger(role, color="red").info("plain")
    assert terminal.getvalue().startswith(f"I:{role}:[")


def test_exceptions_keep_their_traceback(capsys):
    try:
        raise RuntimeError("inner")
    except RuntimeError:
        get_logger(unique_role()).exception("failed")
    err = capsys.readouterr().err
    assert "failed" in err
    assert "RuntimeError: inner" in err


def test_roles_have_distinct_colors():
    roles = ["VENTILATOR", "SINK", "PROXY", "WORKER-0", "WORKER-1", "WORKER-2"]
    colors = [role_color(role) for role in roles]
    assert None not in colors
    assert len(set(colors)) == len(colors)


@pytest.mark.parametrize("role", ["CLIENT", "WORKER-", "WORKER-x"])
def test_unknown_roles_are_uncolored(role):
    assert role_color(role) is None
