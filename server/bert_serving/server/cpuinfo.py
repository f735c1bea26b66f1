"""What Linux's /proc/cpuinfo says about the first processor.

Every processor of a machine has its own block of ``key : value`` lines, separated by a
blank line; the server (which precision pays) and the benchmarks (which CPU they ran on)
both need only the first block.
"""

from __future__ import annotations

import os

CPUINFO = "/proc/cpuinfo"


def first_processor(cpuinfo: str | os.PathLike = CPUINFO) -> dict[str, str]:
    """The first processor's fields (``model name``, ``cpu family``, ``flags``, ...); empty
    where the file does not exist (not Linux)."""
    fields: dict[str, str] = {}
    try:
        with open(cpuinfo, encoding="utf-8") as lines:
            for line in lines:
                key, _, value = line.partition(":")
                if not key.strip():  # the blank line that ends the first block
                    break
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields
