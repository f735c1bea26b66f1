"""Show the arguments a server starts with, one ``name = value`` per line, names aligned."""

from __future__ import annotations

import argparse

from bert_serving.server.args import SECRET_ARGUMENTS


def format_args_table(args: argparse.Namespace, title: str) -> str:
    """Render every argument under ``title``, sorted by name so runs compare with diff."""
    settings = sorted(vars(args).items())
    width = max((len(name) for name, _ in settings), default=0)
    lines = [title, "-" * max(len(title), width + 3)]
    lines += [
        f"{name:>{width}} = {'***' if value is not None and name in SECRET_ARGUMENTS else value}"
        for name, value in settings
    ]
    return "\n".join(lines)
