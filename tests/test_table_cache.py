"""The character tables are computed once per machine and read back exactly, never wrongly."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bert_serving.server.cache_folder import CACHE_ENV, cache_folder
from bert_serving.server.tokenization import char_tables
from bert_serving.server.tokenization.table_cache import cached_tables

FIELDS = ("letters", "digits")
TABLES = {"letters": [(65, 90), (97, 122)], "digits": [(48, 57)]}


class Counted:
    """A compute function that counts its calls."""

    def __init__(self, tables=TABLES):
        self.tables, self.calls = tables, 0

    def __call__(self):
        self.calls += 1
        return self.tables


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_table_is_computed_once_then_read(folder):
    compute = Counted()
    assert cached_tables("t", ["v1"], FIELDS, compute) == TABLES
    assert cached_tables("t", ["v1"], FIELDS, compute) == TABLES
    assert compute.calls == 1
    (stored,) = folder.iterdir()
    assert stored.name.startswith("t-") and stored.suffix == ".json"
    assert not list(folder.glob("*.tmp"))


def test_what_a_table_depends_on_names_its_file(folder):
    compute = Counted()
    cached_tables("t", ["v1"], FIELDS, compute)
    cached_tables("t", ["v2"], FIELDS, compute)
    assert compute.calls == 2
    assert len(list(folder.iterdir())) == 2


@pytest.mark.parametrize(
    "stored",
    [
        "not json",
        "[]",
        json.dumps({"letters": [[65, 90]]}),  # a field missing
        json.dumps({"letters": [[65, 90]], "digits": [[57, 48]]}),  # reversed
        json.dumps({"letters": [[65, 90]], "digits": [[48, 0x110000]]}),  # past the last
        json.dumps({"letters": [[65, 90]], "digits": [[True, 57]]}),  # not an integer
        json.dumps({"letters": [[65, 90, 3]], "digits": []}),
        json.dumps({"letters": "A-Z", "digits": []}),
    ],
    ids=["garbage", "list", "missing", "reversed", "beyond", "bool", "triple", "string"],
)
def test_a_malformed_file_is_computed_again_and_replaced(folder, stored):
    cached_tables("t", ["v1"], FIELDS, Counted())
    (path,) = folder.iterdir()
    path.write_text(stored)
    compute = Counted()
    assert cached_tables("t", ["v1"], FIELDS, compute) == TABLES
    assert compute.calls == 1
    assert json.loads(path.read_text()) == {k: [list(r) for r in v] for k, v in TABLES.items()}


def test_an_unwritable_folder_computes_each_time(tmp_path, monkeypatch):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    monkeypatch.setenv(CACHE_ENV, str(blocker / "cache"))  # under a file: cannot be made
    compute = Counted()
    assert cached_tables("t", ["v1"], FIELDS, compute) == TABLES
    assert cached_tables("t", ["v1"], FIELDS, compute) == TABLES
    assert compute.calls == 2


def test_the_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_folder() == tmp_path / "bert-serving"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_folder() == tmp_path / "home" / ".cache" / "bert-serving"


def test_tables_another_process_wrote_equal_a_fresh_sweep(tmp_path, monkeypatch):
    """What the tokenizer reads from the cache is what the sweep computes: another process
    fills an empty cache, this one reads it and sweeps again itself."""
    folder = tmp_path / "cache"
    written = subprocess.run(
        [
            sys.executable,
            "-c",
            "from bert_serving.server.tokenization import char_tables as t; "
            "t.char_classes(); t.rust_lower_nfd_disagreements()",
        ],
        env={**os.environ, CACHE_ENV: str(folder)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert written.returncode == 0, written.stderr
    assert len(list(folder.glob("*.json"))) == 2

    sweeps = char_tables.compute_char_classes, char_tables.compute_rust_lower_nfd_disagreements

    def must_not_compute():
        raise AssertionError("a table was computed, not read")

    monkeypatch.setenv(CACHE_ENV, str(folder))
    monkeypatch.setattr(char_tables, "compute_char_classes", must_not_compute)
    monkeypatch.setattr(char_tables, "compute_rust_lower_nfd_disagreements", must_not_compute)
    readers = char_tables.char_classes, char_tables.rust_lower_nfd_disagreements
    for reader in readers:
        reader.cache_clear()  # this process's own copy: read the folder's
    try:
        classes, disagreements = (reader() for reader in readers)
    finally:
        for reader in readers:
            reader.cache_clear()  # the next caller reads the run's cache again
    assert classes._asdict() == sweeps[0]()
    assert disagreements == sweeps[1]()["codes"]
