"""MkDocs hook: leave out of the nav the guide pages that are not written yet.

Other contributors add some pages (dashboard, reliability) in their own time; until a
page exists its nav entry would fail the strict build, so it is dropped with a note.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("mkdocs.hooks.optional_pages")
OPTIONAL_PAGES = {"dashboard.md", "reliability.md"}


def _prune(entries: list, docs_dir: Path) -> list:
    kept = []
    for entry in entries:
        if isinstance(entry, dict):
            ((title, target),) = entry.items()
            if isinstance(target, list):
                kept.append({title: _prune(target, docs_dir)})
                continue
            if target in OPTIONAL_PAGES and not (docs_dir / target).exists():
                log.info("nav: %s is not written yet, left out", target)
                continue
        kept.append(entry)
    return kept


def on_config(config):
    """Drop nav entries of optional pages that are missing from docs_dir."""
    if config.nav:
        config.nav = _prune(config.nav, Path(config.docs_dir))
    return config
