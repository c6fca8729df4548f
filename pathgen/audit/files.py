"""File names of an audit folder (``pathgen audit sample --out DIR``; docs/dataset.md
"Auditing captions").

No config import.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

MANIFEST_JSON = "manifest.json"       # the sampled items, their texts and sentences
AUDIT_IMAGES_DIR = "images"           # <item id><ext>: the patches, copied or linked
VERDICTS_DIR = "verdicts"             # <reviewer>.json, one file per reviewer
SCORE_JSON = "score.json"             # pathgen audit score
SCORE_MD = "score.md"

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def manifest_file(audit_dir: str | Path) -> Path:
    return Path(audit_dir) / MANIFEST_JSON


def verdicts_dir(audit_dir: str | Path) -> Path:
    return Path(audit_dir) / VERDICTS_DIR


def reviewer_file_stem(reviewer: str) -> str:
    """The file name (without .json) of a reviewer's verdicts: the name itself when it is a
    plain [A-Za-z0-9_-] word, else its safe characters and a hash of the whole name (so any
    name maps to one file inside verdicts/ and two names never share one)."""
    if _SAFE_NAME.fullmatch(reviewer):
        return reviewer
    ascii_name = unicodedata.normalize("NFKD", reviewer).encode("ascii", "ignore").decode()
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", ascii_name).strip("_-")[:40] or "reviewer"
    return f"{safe}-{hashlib.sha256(reviewer.encode()).hexdigest()[:10]}"


def reviewer_file(audit_dir: str | Path, reviewer: str) -> Path:
    return verdicts_dir(audit_dir) / f"{reviewer_file_stem(reviewer)}.json"


def score_files(audit_dir: str | Path) -> dict[str, Path]:
    d = Path(audit_dir)
    return {"json": d / SCORE_JSON, "md": d / SCORE_MD}
