"""Import path of 1.10: ``from bert_serving.server.helper import get_args_parser``.

Scripts written for 1.10 build their server arguments through this module, so it
keeps offering the parsers, which now live in ``args``.
"""

from __future__ import annotations

from bert_serving.server.args import get_args_parser, get_shutdown_parser

__all__ = ["get_args_parser", "get_shutdown_parser"]
