"""The pure matching core: no I/O, no clock, no randomness, no imports from the project.

``Engine`` applies commands and returns events (tuples, see ``events.EVENT_FIELDS``);
``dump_engine`` / ``load_engine`` turn its state into plain data and back.

The same modules also run compiled by mypyc (``scripts/build_core.py``, run by
``scripts/bootstrap``). A build lives in ``build/core/<digest>/`` where the digest is that of
the sources below and the interpreter's ABI, so a build can only ever belong to the sources
it was compiled from: this package (pure Python, never compiled) hashes the sources at
import and puts the matching build first on its ``__path__``; with no build for them (an
edited module, a fresh clone, another interpreter) it logs a warning and the pure modules
load. ``BOURSE_PURE_CORE=1`` forces the pure modules. ``CORE_KIND`` says which one ran.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import logging
import os
from pathlib import Path

#: The modules mypyc compiles (all of the core but this file), as one group.
COMPILED_MODULES = ("book", "constants", "engine", "events", "order", "snapshot", "split")
#: The mypyc shared library's module name inside this package (``mypycify(group_name=)``).
NATIVE_GROUP = "matching.core.native"
#: Written last by the build into its directory: a build without it is incomplete.
BUILD_MARKER = "BUILD.json"

_HERE = Path(__file__).resolve().parent
_log = logging.getLogger(__name__)


def source_digest() -> str:
    """The build key: the compiled modules' bytes and the interpreter's extension ABI."""
    h = hashlib.sha256(importlib.machinery.EXTENSION_SUFFIXES[0].encode())
    for name in COMPILED_MODULES:
        h.update(b"\0" + name.encode() + b"\0")
        h.update((_HERE / f"{name}.py").read_bytes())
    return h.hexdigest()[:20]


def builds_root() -> Path:
    """``build/core`` at the top of the checkout (git-ignored)."""
    return _HERE.parents[1] / "build" / "core"


def compiled_dir(digest: str) -> Path:
    """Where the build of ``digest`` keeps the package's extension modules."""
    return builds_root() / digest / "matching" / "core"


def _pick_core() -> str:
    if os.environ.get("BOURSE_PURE_CORE", "") not in ("", "0"):
        _log.info("matching core: pure Python (BOURSE_PURE_CORE is set)")
        return "pure"
    digest = source_digest()
    where = compiled_dir(digest)
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    complete = (where.parent.parent / BUILD_MARKER).is_file() and all(
        (where / f"{name}{suffix}").is_file() for name in (*COMPILED_MODULES, "native__mypyc")
    )
    if not complete:
        _log.warning(
            "matching core: no compiled build for these sources (build/core/%s), running the "
            "pure Python core; scripts/bootstrap builds it",
            digest,
        )
        return "pure"
    __path__.insert(0, str(where))  # noqa: F405 (the package's own, not the star import's)
    return "compiled"


CORE_KIND = _pick_core()

from .book import AssetConfig, Book  # noqa: E402
from .constants import *  # noqa: E402, F403
from .engine import DEFAULT_DEDUP_WINDOW, Engine  # noqa: E402
from .events import EVENT_FIELDS, Event, event_dict  # noqa: E402
from .order import Level, Order  # noqa: E402
from .snapshot import dump_engine, load_engine  # noqa: E402

__all__ = [
    "BUILD_MARKER",
    "COMPILED_MODULES",
    "CORE_KIND",
    "DEFAULT_DEDUP_WINDOW",
    "EVENT_FIELDS",
    "NATIVE_GROUP",
    "AssetConfig",
    "Book",
    "Engine",
    "Event",
    "Level",
    "Order",
    "builds_root",
    "compiled_dir",
    "dump_engine",
    "event_dict",
    "load_engine",
    "source_digest",
]
