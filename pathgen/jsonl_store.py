"""JSON Lines in one place: the validated reader, the atomic writer and the append-only
resumable store every stage that processes items one by one uses (captioning, instruct).

:class:`ResumableJsonl`: each finished item is written unbuffered and fsynced, so a killed
run loses at most the item in flight and a rerun skips every key already written. A write
that fails (disk full, read-only, quota) is rolled back to the last complete record before
the error is raised; if the rollback itself fails, the torn tail is cut when the file is next
opened, and an append never glues a record onto a torn line. The final file is produced
atomically by :meth:`ResumableJsonl.finalize`.
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
    record supersedes its old one). Subclasses turn a failed write into their own error type
    by overriding :meth:`write_error`."""

    def __init__(self, partial_path: str | os.PathLike, key: Callable[[dict], Hashable]):
        self.path = Path(partial_path)
        self.key = key
        self.records: dict[Hashable, dict] = {}
        self._fh = None
        self._load()

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

    def write_error(self, err: OSError) -> Exception:
        """The exception a failed append raises (after the rollback); the OSError itself here."""
        return err

    def append(self, rec: dict) -> None:
        """Append + fsync one record; on OSError roll the file back to its last complete
        record, drop the handle and raise :meth:`write_error`'s exception."""
        line = (json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8")
        start = None
        try:
            fd = self._fh.fileno() if self._fh is not None else self._open()
            start = os.lseek(fd, 0, os.SEEK_END)
            self._write_all(fd, line)
            os.fsync(fd)
        except OSError as err:
            self._rollback(start)
            exc = self.write_error(err)
            if exc is err:
                raise
            raise exc from err
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
    """All ``records`` to ``path``, one per line, atomically (a reader never sees half a file)."""
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")


def read_jsonl_lines(path: str | os.PathLike, error: type[Exception] = ValueError,
                     fix: str = "") -> Iterator[tuple[int, dict]]:
    """(line number, record) for every non-blank line of a JSON Lines file. A binary/non-UTF-8
    line, a non-JSON line or a line that is not a JSON object raises ``error`` naming the file
    and line, followed by the caller's ``fix`` text (e.g. ``"; re-run captioning"``)."""
    with open(path, "rb") as fh:
        for i, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise error(f"{path} line {i} is not UTF-8 text (a binary file?); expected "
                            f"JSON Lines{fix}") from None
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                raise error(f"{path} line {i} is not valid JSON ({err}){fix}") from None
            if not isinstance(rec, dict):
                raise error(f"{path} line {i}: expected a JSON object per line{fix}")
            yield i, rec


def read_jsonl(path: str | os.PathLike, error: type[Exception] = ValueError, fix: str = "") -> Iterator[dict]:
    """Records of a JSON Lines file, checked as :func:`read_jsonl_lines` does."""
    for _, rec in read_jsonl_lines(path, error, fix):
        yield rec
