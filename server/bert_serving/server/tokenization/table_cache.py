"""Tables of code-point ranges that take seconds to compute, kept on disk between processes.

A table computed by sweeping all 1,114,112 code points costs seconds of CPU, and every
worker process paid it at start-up, before its first answer (a server of two workers, two
sweeps; a replaced worker, one more). Such a table depends only on what its caller names
(this Python's Unicode data, a library's version, the code that computes it), so the first
process computes it and writes it under a name made from those; the others read it in
milliseconds. The cache is an optimisation only: a folder that cannot be written (a
read-only home in a container) is skipped, and a file that cannot be read or is not a
well-formed table is computed again and replaced, never used.

Where: the server's cache folder (``cache_folder.py`` says which, and what else is kept).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from ..cache_folder import cache_folder

LAST_CODE_POINT = 0x10FFFF

Ranges = list[tuple[int, int]]
Tables = dict[str, Ranges]


def cached_tables(
    name: str, depends_on: Sequence[str], fields: Sequence[str], compute: Callable[[], Tables]
) -> Tables:
    """The tables ``compute()`` returns (one list of ranges per name in ``fields``), read
    from the cache when a process with the same ``depends_on`` already computed them."""
    key = hashlib.sha256("\0".join(depends_on).encode()).hexdigest()[:24]
    path = cache_folder() / f"{name}-{key}.json"
    tables = _read(path, fields)
    if tables is None:
        tables = compute()
        _write(path, tables)
    return tables


def _read(path: Path, fields: Sequence[str]) -> Tables | None:
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or sorted(stored) != sorted(fields):
        return None
    tables = {}
    for field, ranges in stored.items():
        if not isinstance(ranges, list) or not all(_is_range(item) for item in ranges):
            return None
        tables[field] = [(low, high) for low, high in ranges]
    return tables


def _is_range(item: object) -> bool:
    return (
        isinstance(item, list)
        and len(item) == 2
        and all(type(bound) is int for bound in item)
        and 0 <= item[0] <= item[1] <= LAST_CODE_POINT
    )


def _write(path: Path, tables: Tables) -> None:
    """Write through a temporary file renamed into place, so that a process starting at the
    same moment reads either nothing or the whole table."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    except OSError:
        return  # not writable here: every process computes its own, as before the cache
    try:
        with os.fdopen(handle, "w") as out:
            json.dump(tables, out, separators=(",", ":"))
        os.chmod(temporary, 0o644)  # no secret: other users of a shared folder may read it
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
