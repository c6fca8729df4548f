"""Reviewers' verdicts: one JSON file per reviewer in ``<audit>/verdicts/``, rewritten
atomically (temp file, fsync, ``os.replace``) at every verdict, so closing the browser or
killing the server loses nothing and a half-written file never exists.

File (``pathgen-audit-verdicts/1``)::

    {"format", "reviewer", "updated",
     "items": {"<item id>": {"digest": "<the item's texts digest>", "updated",
                             "caption": {"<sentence index>": "correct" | "wrong" | "not_visible" | "cant_tell"},
                             "describe": {...}, "revise": {...}, "corrected": "<corrected caption>"}}}

``digest`` ties a verdict to the texts it was given on: an item whose texts changed since (a
re-sampled folder) has its old verdicts ignored by the page and the scores.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import threading
import unicodedata
from datetime import datetime, timezone
from pathlib import Path

from ..atomic import atomic_path
from .files import VERDICTS_DIR, reviewer_file, reviewer_file_stem, verdicts_dir
from .sample import TEXT_PARTS

log = logging.getLogger(__name__)

VERDICTS_FORMAT = "pathgen-audit-verdicts/1"
VERDICTS = ("correct", "wrong", "not_visible", "cant_tell")
VERDICT_LABELS = {"correct": "correct", "wrong": "wrong", "not_visible": "not visible",
                  "cant_tell": "can't tell"}
MAX_REVIEWER = 64
MAX_CORRECTED = 4000


class VerdictError(ValueError):
    """A verdict or correction that is refused (the message is shown to the reviewer)."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def item_digest(item: dict) -> str:
    """Digest of an item's texts (what a verdict was given on)."""
    texts = {k: (item.get("texts") or {}).get(k, "") for k in TEXT_PARTS}
    return hashlib.sha256(json.dumps(texts, sort_keys=True).encode()).hexdigest()[:16]


def check_reviewer(name) -> str:
    """A reviewer's name: 1-64 printable characters (any script), stripped."""
    if not isinstance(name, str):
        raise VerdictError("reviewer: expected the reviewer's name as a string")
    name = name.strip()
    if not name:
        raise VerdictError("reviewer: enter your name first")
    if len(name) > MAX_REVIEWER:
        raise VerdictError(f"reviewer: at most {MAX_REVIEWER} characters")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in name):
        raise VerdictError("reviewer: control or invisible characters are not allowed in a name")
    return name


def empty(reviewer: str) -> dict:
    return {"format": VERDICTS_FORMAT, "reviewer": reviewer, "updated": None, "items": {}}


def read_file(path: Path) -> dict:
    """One reviewer file, checked (ValueError names the file and the problem)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("items"), dict) \
            or not isinstance(data.get("reviewer"), str):
        raise ValueError(f"{path}: not a verdicts file (needs 'reviewer' and 'items')")
    for item_id, entry in data["items"].items():
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: item {item_id!r} is not an object")
        for part in TEXT_PARTS:
            bad = [v for v in (entry.get(part) or {}).values() if v not in VERDICTS]
            if bad:
                raise ValueError(f"{path}: item {item_id!r} {part}: unknown verdict(s) {bad}")
    return data


def read_all(audit_dir: str | Path) -> list[dict]:
    """Every reviewer's verdicts in the folder (files that cannot be read are skipped, warned)."""
    d = verdicts_dir(audit_dir)
    out = []
    for f in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            out.append(read_file(f))
        except ValueError as err:
            log.warning("skipped: %s", err)
    return out


def current_entries(data: dict, items: dict[str, dict]) -> dict[str, dict]:
    """The entries of a reviewer file given on the items' current texts (others: stale)."""
    out = {}
    for item_id, entry in data.get("items", {}).items():
        item = items.get(item_id)
        if item is not None and entry.get("digest") == item_digest(item):
            out[item_id] = entry
    return out


class VerdictStore:
    """Reads and updates the reviewers' files of one audit folder (thread-safe; a file lock
    per reviewer also serialises two servers started on the same folder)."""

    def __init__(self, audit_dir: str | Path, manifest: dict):
        self.dir = Path(audit_dir)
        self.items = {i["id"]: i for i in manifest["items"]}
        self.digests = {k: item_digest(i) for k, i in self.items.items()}
        self._lock = threading.Lock()

    def load(self, reviewer: str) -> dict:
        reviewer = check_reviewer(reviewer)
        path = reviewer_file(self.dir, reviewer)
        if not path.exists():
            return empty(reviewer)
        data = read_file(path)
        if data["reviewer"] != reviewer:
            raise VerdictError(f"{path.name} belongs to reviewer {data['reviewer']!r}")
        return data

    def view(self, reviewer: str) -> dict:
        """What the page shows: the reviewer's entries on the items' current texts."""
        data = self.load(reviewer)
        return {**data, "items": current_entries(data, self.items)}

    @contextlib.contextmanager
    def _locked(self, reviewer: str):
        d = self.dir / VERDICTS_DIR
        d.mkdir(parents=True, exist_ok=True)
        with self._lock, open(d / f".{reviewer_file_stem(reviewer)}.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _entry(self, data: dict, item_id: str) -> dict:
        entry = data["items"].get(item_id)
        if not isinstance(entry, dict) or entry.get("digest") != self.digests[item_id]:
            entry = {"digest": self.digests[item_id]}  # none yet, or given on other texts
            data["items"][item_id] = entry
        return entry

    def _save(self, reviewer: str, data: dict) -> None:
        data["updated"] = _now()
        path = reviewer_file(self.dir, reviewer)
        with atomic_path(path) as tmp:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=1, ensure_ascii=False, sort_keys=True)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
        with contextlib.suppress(OSError):  # the rename itself survives a power cut
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def check_target(self, item_id, part=None, sentence=None) -> None:
        if not isinstance(item_id, str) or item_id not in self.items:
            raise VerdictError(f"item: unknown item {str(item_id)[:80]!r}")
        if part is None:
            return
        if part not in TEXT_PARTS:
            raise VerdictError(f"part: expected one of {', '.join(TEXT_PARTS)}, got {str(part)[:40]!r}")
        n = len(self.items[item_id]["sentences"].get(part) or [])
        if isinstance(sentence, bool) or not isinstance(sentence, int) or not 0 <= sentence < n:
            raise VerdictError(f"sentence: expected an index 0..{n - 1} of the item's {part} sentences, "
                               f"got {str(sentence)[:20]!r}")

    def set_verdict(self, reviewer, item_id, part, sentence, verdict) -> dict:
        """Record (or clear, with ``verdict`` None) one sentence's verdict; returns the entry."""
        reviewer = check_reviewer(reviewer)
        self.check_target(item_id, part, sentence)
        if verdict is not None and verdict not in VERDICTS:
            raise VerdictError(f"verdict: expected one of {', '.join(VERDICTS)} (or null to clear), "
                               f"got {str(verdict)[:40]!r}")
        with self._locked(reviewer):
            data = self.load(reviewer)
            entry = self._entry(data, item_id)
            given = entry.setdefault(part, {})
            if verdict is None:
                given.pop(str(sentence), None)
            else:
                given[str(sentence)] = verdict
            entry["updated"] = _now()
            self._save(reviewer, data)
            return entry

    def set_corrected(self, reviewer, item_id, text) -> dict:
        """Record the reviewer's corrected caption of an item ("" removes it)."""
        reviewer = check_reviewer(reviewer)
        self.check_target(item_id)
        if not isinstance(text, str):
            raise VerdictError("corrected: expected text")
        if len(text) > MAX_CORRECTED:
            raise VerdictError(f"corrected: at most {MAX_CORRECTED} characters")
        with self._locked(reviewer):
            data = self.load(reviewer)
            entry = self._entry(data, item_id)
            if text.strip():
                entry["corrected"] = text.strip()
            else:
                entry.pop("corrected", None)
            entry["updated"] = _now()
            self._save(reviewer, data)
            return entry
