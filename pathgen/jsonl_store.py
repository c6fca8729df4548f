"""Append-only JSONL with resume: each finished item is flushed and fsynced, so a killed run
loses at most the item in flight and a rerun skips every key already written.

Used by stages that process items one by one (instruction generation; see also captioning).
The final file is produced atomically by :meth:`ResumableJsonl.finalize`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Callable, Hashable, Iterable, Iterator

from .atomic import atomic_path

log = logging.getLogger(__name__)


class ResumableJsonl:
    """Records keyed by ``key(rec)``; the last record of a key wins (a retried item's new
    record supersedes its old one)."""

    def __init__(self, partial_path: str | os.PathLike, key: Callable[[dict], Hashable]):
        self.path = Path(partial_path)
        self.key = key
        self.records: dict[Hashable, dict] = {}
        self._load()
        self._fh = None

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a torn last line from a kill: cut it off
            log.warning("%s: dropping %d bytes of an incomplete last record", self.path, len(data) - end)
            with self.path.open("r+b") as fh:
                fh.truncate(end)
        for i, line in enumerate(data[:end].splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                self.records[self.key(rec)] = rec
            except (ValueError, KeyError, TypeError):
                log.warning("%s line %d is not a valid record; ignored", self.path, i)

    def __contains__(self, key: Hashable) -> bool:
        return key in self.records

    def append(self, rec: dict) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a", encoding="utf-8")
        self._fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.records[self.key(rec)] = rec

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def finalize(self, final_path: str | os.PathLike, order: Iterable[Hashable] | None = None) -> list[dict]:
        """Write all records (in ``order`` when given) to ``final_path`` atomically; drop the partial."""
        self.close()
        keys = list(order) if order is not None else list(self.records)
        recs = [self.records[k] for k in keys if k in self.records]
        write_jsonl(final_path, recs)
        if self.path.exists():
            self.path.unlink()
        return recs


def write_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> None:
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")


def read_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    """Records of a JSON Lines file; a binary/non-UTF-8 or non-JSON line is a ValueError
    naming the file and line."""
    with open(path, "rb") as fh:
        for i, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(f"{path} line {i} is not UTF-8 text (a binary file?); expected "
                                 "JSON Lines") from None
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path} line {i} is not valid JSON: {err}") from None
