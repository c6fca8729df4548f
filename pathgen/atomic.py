"""Atomic file writes: write to a temp name beside the target, then rename.

Snakemake (and users) never see half-written outputs; a killed job leaves only a temp file
that the next attempt overwrites.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp path in the target's folder; rename it onto ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or target.suffix or ".tmp",
                               dir=target.parent)
    # mkstemp creates 0600; outputs should get the usual umask-based mode so a lab group can read them.
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            if tmp_path.is_dir():
                shutil.rmtree(tmp_path)
            else:
                tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Build a directory under a temp name, then swap it into place."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def write_json(target: str | os.PathLike, obj, indent: int | None = 2) -> None:
    write_text(target, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def _indented(obj, indent: str, level: int) -> str:
    """``json.dumps(obj, indent=len(indent), ensure_ascii=False)`` nested ``level`` deep,
    built from the C encoder's output for the scalars: the pure-Python encoder that ``indent``
    selects leaves reference cycles (its closures) behind on every call, garbage that a long
    stream of calls piles up until a full collection."""
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        if not all(isinstance(k, str) for k in obj):  # json's own key conversions
            return json.dumps(obj, indent=len(indent), ensure_ascii=False).replace("\n", "\n" + indent * level)
        inner = "\n" + indent * (level + 1)
        return ("{" + inner + ("," + inner).join(
            json.dumps(k, ensure_ascii=False) + ": " + _indented(v, indent, level + 1) for k, v in obj.items())
            + "\n" + indent * level + "}")
    if isinstance(obj, (list, tuple)):
        if not obj:
            return "[]"
        inner = "\n" + indent * (level + 1)
        return ("[" + inner + ("," + inner).join(_indented(v, indent, level + 1) for v in obj)
                + "\n" + indent * level + "]")
    return json.dumps(obj, ensure_ascii=False)


@contextlib.contextmanager
def json_array_writer(target: str | os.PathLike, indent: int | None = None) -> Iterator:
    """Write a JSON list one item at a time, atomically: yields ``add(item)``. The file is
    byte-identical to ``write_json(target, items, indent)`` (indent None or a number), so a
    whole-file format is written without holding its items."""
    with atomic_path(target) as tmp, tmp.open("w", encoding="utf-8") as fh:
        first = True
        pad = "" if indent is None else "\n" + " " * indent
        sep = ", " if indent is None else ","

        def add(item) -> None:
            nonlocal first
            if indent is None:
                text = json.dumps(item, ensure_ascii=False)
            else:
                text = _indented(item, " " * indent, 1)
            fh.write(("[" if first else sep) + pad + text)
            first = False

        yield add
        fh.write("[]\n" if first else ("\n" if indent is not None else "") + "]\n")
