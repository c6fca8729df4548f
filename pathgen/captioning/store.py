"""Crash-safe per-item caption results: ``<slide>.partial.jsonl``, one record per line,
flushed and fsynced per item (pathgen.jsonl_store). A kill loses at most the item in flight; a
rerun skips every key already done (key = (x, y)); the last record of a key wins, so a failed
item that is retried supersedes its old record.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..jsonl_store import ResumableJsonl


def partial_path(out_jsonl: str | os.PathLike) -> Path:
    out = Path(out_jsonl)
    return out.with_name(out.name.removesuffix(".jsonl") + ".partial.jsonl")


def record_key(rec: dict) -> tuple[int, int]:
    return (int(rec["x"]), int(rec["y"]))


class PartialStore(ResumableJsonl):
    def __init__(self, path: str | os.PathLike):
        super().__init__(path, record_key)

    def done(self, prompt_hash: str) -> set[tuple[int, int]]:
        """Keys finished OK under this prompt hash (failed ones are retried)."""
        return {k for k, r in self.records.items()
                if r.get("status") == "ok" and r.get("prompt_hash") == prompt_hash}
