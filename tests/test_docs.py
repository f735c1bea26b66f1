"""The documentation site builds with warnings as errors, and covers every example."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

pytest.importorskip("mkdocs", reason="pip install -r tests/requirements.txt")
pytest.importorskip("mkdocstrings", reason="pip install -r tests/requirements.txt")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """`mkdocs build --strict` into a temporary folder; its output on failure.

    Run from the repository's root with the relative `-f docs/mkdocs.yml`: mkdocs refuses a
    config file inside its own `docs_dir` when given as an absolute path (or from docs/).
    """
    site_dir = tmp_path_factory.mktemp("site")
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--clean",
            "-f",
            "docs/mkdocs.yml",
            "-d",
            str(site_dir),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    print(f"\nmkdocs build --strict: {time.monotonic() - started:.1f} s")
    assert done.returncode == 0, done.stdout + done.stderr
    return site_dir


def test_site_builds_with_every_page(site):
    for page in (
        "index",
        "getting-started",
        "tutorials",
        "server-api",
        "client-api",
        "faq",
        "benchmark",
        "encoder",
        "serving",
        "http",
        "deploy",
    ):
        assert (site / f"{page}.html").is_file(), page


def test_api_pages_come_from_the_docstrings(site):
    client = (site / "client-api.html").read_text("utf-8")
    for member in ("encode_async", "fetch_all", "listen", "ConcurrentBertClient", "Response"):
        assert member in client, member
    assert "Encode a list of str" in client  # BertClient.encode's docstring
    server = (site / "server-api.html").read_text("utf-8")
    assert "wait_until_ready" in server and "Block until every worker serves" in server
    assert "get_args_parser" in server


def test_tutorials_page_names_every_example():
    tutorials = (DOCS / "tutorials.md").read_text("utf-8")
    scripts = sorted(p.name for p in (ROOT / "example").glob("*.py"))
    missing = [
        name
        for name in scripts
        if name not in ("demo.py", "helpers.py") and f"`{name}`" not in tutorials
    ]
    assert not missing, f"example scripts not on the tutorials page: {missing}"
