"""A validated catalog kept between processes, so that a command pays for reading and cross-checking the
catalog files once per change of those files, not at every start (about 90 ms of the 0.6 s a solve may take).

The key is a digest of every catalog file's bytes, of the code that validates them and of the pydantic and
Python versions: an edited catalog or an upgraded planner misses the cache and is validated again. Only
catalogs that passed validation are kept, so an error is reported the same way every time. The cache is an
optimisation and nothing else: a folder that cannot be written, or a file that cannot be read back, is passed
over and the catalog built from its files. `PLANNER_CACHE_DIR` moves it; `PLANNER_CACHE_DIR=off` turns it off.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pydantic

T = TypeVar("T")

# The modules whose code decides what a valid catalog is and what the loaded object holds.
_CODE = ("strict.py", "catalog/schema.py", "catalog/loader.py", "catalog/cache.py", "errors.py", "yamlio.py")
_FORMAT = b"planner-catalog-cache-1"
KEEP = 8  # catalogs kept: a few versions side by side (tests, a calibration overlay's folder) without growth


def cache_dir() -> Path | None:
    configured = os.environ.get("PLANNER_CACHE_DIR")
    if configured is not None:
        return None if configured.strip().lower() in ("", "off", "0", "no") else Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "planner"


def _digest(files: list[Path]) -> str:
    package = Path(__file__).resolve().parents[1]
    h = hashlib.sha256(_FORMAT)
    h.update(str(files[0].parent if files else "").encode())  # the loaded catalog records its folder
    # The pickled models' layout belongs to the pydantic and Python that wrote them.
    h.update(f"{pydantic.VERSION} {sys.version_info[:2]}".encode())
    for path in [package / c for c in _CODE] + files:
        h.update(str(path.name).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:32]


def cached(files: list[Path], build: Callable[[], T]) -> T:
    """`build()`, or what it returned last time for files with these very bytes."""
    folder = cache_dir()
    if folder is None:
        return build()
    try:
        target = folder / f"catalog-{_digest(files)}.pickle"
    except OSError:
        return build()  # a file that cannot be read: let the loader report it
    try:
        with open(target, "rb") as fh:
            return pickle.load(fh)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError):
        pass
    value = build()
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(partial, "wb") as fh:
            pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(partial, target)  # readers see the whole file or none
        _prune(folder)
    except (OSError, pickle.PicklingError, TypeError, AttributeError):
        partial.unlink(missing_ok=True)
    return value


def _prune(folder: Path) -> None:
    kept = sorted(folder.glob("catalog-*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in kept[KEEP:]:
        old.unlink(missing_ok=True)
