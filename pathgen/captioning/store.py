"""Crash-safe per-item caption results: ``<slide>.partial.jsonl`` (Layout.caption_files), one
record per line, written by pathgen.jsonl_store.ResumableJsonl (unbuffered, fsynced per item,
rolled back on a failed write, torn tail cut on open). A kill loses at most the item in
flight; a rerun skips every key already done (key = (x, y)); the last record of a key wins,
so a failed item that is retried supersedes its old record.

A write that fails (disk full, read-only, quota) is raised as :class:`CaptioningWriteError`
naming the file and the errno; the run stops (pipeline.run_items) instead of waiting on a
writer that is gone.
"""

from __future__ import annotations

import errno as _errno
import os
from pathlib import Path

from ..jsonl_store import ResumableJsonl
from .items import CaptioningAborted


class CaptioningWriteError(CaptioningAborted):
    """A caption record could not be persisted; records written before it are kept."""

    def __init__(self, path: str | os.PathLike, err: OSError):
        self.path = Path(path)
        self.errno = err.errno
        name = _errno.errorcode.get(err.errno, "?") if err.errno is not None else "?"
        super().__init__(
            f"cannot write caption records to {self.path}: [Errno {err.errno} {name}] "
            f"{err.strerror or err}. Every record written before is kept; free space / make "
            "the folder writable and rerun to resume.")


def record_key(rec: dict) -> tuple[int, int]:
    return (int(rec["x"]), int(rec["y"]))


class PartialStore(ResumableJsonl):
    def __init__(self, path: str | os.PathLike):
        super().__init__(path, record_key)

    def done(self, prompt_hash: str) -> set[tuple[int, int]]:
        """Keys finished OK under this prompt hash (failed ones are retried)."""
        return {k for k, r in self.records.items()
                if r.get("status") == "ok" and r.get("prompt_hash") == prompt_hash}

    def write_error(self, err: OSError) -> Exception:
        return CaptioningWriteError(self.path, err)
