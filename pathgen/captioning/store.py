"""Crash-safe per-item results: ``<slide>.partial.jsonl``, appended one record per line,
flushed and fsynced per item. A kill loses at most the item in flight; a torn last line is
cut off on reopen; a rerun skips every key already done (key = (x, y)); the last record of
a key wins (failed items are retried and their new record supersedes the old one).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def partial_path(out_jsonl: str | os.PathLike) -> Path:
    out = Path(out_jsonl)
    return out.with_name(out.name.removesuffix(".jsonl") + ".partial.jsonl")


def record_key(rec: dict) -> tuple[int, int]:
    return (int(rec["x"]), int(rec["y"]))


class PartialStore:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.records: dict[tuple[int, int], dict] = {}
        self._load()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "ab")

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # torn write from a kill: drop the incomplete tail
            log.warning("%s: dropping %d bytes of an incomplete last record", self.path,
                        len(data) - end)
            with open(self.path, "r+b") as fh:
                fh.truncate(end)
        for i, line in enumerate(data[:end].splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                self.records[record_key(rec)] = rec
            except (ValueError, KeyError, TypeError):
                log.warning("%s line %d is not a caption record; ignored", self.path, i)

    def done(self, prompt_hash: str) -> set[tuple[int, int]]:
        """Keys finished OK under this prompt hash (failed ones are retried)."""
        return {k for k, r in self.records.items()
                if r.get("status") == "ok" and r.get("prompt_hash") == prompt_hash}

    def append(self, rec: dict) -> None:
        self._fh.write((json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8"))
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.records[record_key(rec)] = rec

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
