"""Crash-safe per-item caption results: ``<slide>.partial.jsonl``, one record per line,
flushed and fsynced per item (pathgen.jsonl_store). A kill loses at most the item in flight; a
rerun skips every key already done (key = (x, y)); the last record of a key wins, so a failed
item that is retried supersedes its old record.

A write that fails (disk full, read-only, quota) is rolled back to the last complete record
and raised as :class:`CaptioningWriteError` naming the file and the errno; the run stops
(pipeline.run_items) instead of waiting on a writer that is gone. If the rollback itself
fails, the torn tail is cut when the file is next opened (ResumableJsonl._load), and an
append never glues a record onto a torn line.
"""

from __future__ import annotations

import errno as _errno
import json
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

    def _open(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # unbuffered: nothing is left in a Python buffer to be re-flushed (torn) at close
        self._fh = open(self.path, "a+b", buffering=0)
        fd = self._fh.fileno()
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":  # torn tail: start on a fresh line
            self._write_all(fd, b"\n")
        return fd

    @staticmethod
    def _write_all(fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]

    def append(self, rec: dict) -> None:
        """Append + fsync one record; on OSError roll the file back to its last complete
        record, drop the handle and raise :class:`CaptioningWriteError`."""
        line = (json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8")
        start = None
        try:
            fd = self._fh.fileno() if self._fh is not None else self._open()
            start = os.lseek(fd, 0, os.SEEK_END)
            self._write_all(fd, line)
            os.fsync(fd)
        except OSError as err:
            self._rollback(start)
            raise CaptioningWriteError(self.path, err) from err
        self.records[self.key(rec)] = rec

    def _rollback(self, start: int | None) -> None:
        fh, self._fh = self._fh, None
        if fh is None:
            return
        try:
            if start is not None:
                os.ftruncate(fh.fileno(), start)
        except OSError:
            pass  # cut on the next open instead
        try:
            fh.close()
        except OSError:
            pass
