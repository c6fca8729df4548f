"""Reading the captioning stage's per-slide files (docs/architecture.md "Captions"):
``<slide>.jsonl`` (final records), ``<slide>.rejects.jsonl`` and ``<slide>.summary.json``.

Caption files are inputs from outside the dataset folder (a copied results tree, a
hand-edited file), so every record is checked before anything is written: the file name and
each record's ``slide_id`` must be a safe slide id (pathgen.slide_tables) and the same slide,
``x``/``y`` non-negative integers, ``image``/``caption`` strings. A problem is a
:class:`DatasetInputError` naming the file, line and field, and the fix.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .. import jsonl_store
from ..captioning.files import caption_files
from ..slide_tables import slide_id_problem

log = logging.getLogger(__name__)


class DatasetInputError(ValueError):
    """A caption file (or a record in it) that the dataset builder refuses."""


@dataclass
class SlideCaptions:
    slide_id: str
    path: Path
    accepted: list[dict] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    summary: dict | None = None
    # id(record) -> "<file> line <n>", for messages about a record
    origin: dict[int, str] = field(default_factory=dict, repr=False)

    def where(self, rec: dict) -> str:
        return self.origin.get(id(rec), str(self.path))

    @property
    def reject_reasons(self) -> Counter:
        c: Counter = Counter()
        for r in self.rejected:
            reasons = r.get("reject_reasons") or []
            if isinstance(reasons, str):
                reasons = [reasons]
            if not reasons:
                reasons = ["failed" if r.get("status") == "failed" else "unspecified"]
            c.update(str(x) for x in reasons)
        return c


def slide_id_of(jsonl: Path) -> str:
    return jsonl.name[: -len(".jsonl")] if jsonl.name.endswith(".jsonl") else jsonl.stem


def companions(jsonl: Path) -> tuple[Path, Path]:
    """The rejects and summary files captioning writes beside ``jsonl`` (pathgen.paths)."""
    files = caption_files(jsonl)
    return files["rejects"], files["summary"]


# Appended to a malformed-line error of a caption file (jsonl_store.read_jsonl_lines).
_REREAD_FIX = "; re-run captioning for this slide"


def read_jsonl_lines(path: Path) -> list[tuple[int, dict]]:
    """(line number, record) for every non-blank line; bad bytes/JSON name the line."""
    return list(jsonl_store.read_jsonl_lines(path, DatasetInputError, _REREAD_FIX))


def _is_coord(v) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return v >= 0
    if isinstance(v, float):
        return v.is_integer() and v >= 0
    return isinstance(v, str) and v.isascii() and v.isdigit()


def check_record(rec: dict, where: str, slide_id: str, need_caption: bool) -> None:
    """Raise DatasetInputError unless ``rec`` is a record of ``slide_id`` (see module doc)."""
    for key in ("slide_id", "x", "y") + (("caption",) if need_caption else ()):
        if key not in rec:
            raise DatasetInputError(f"{where} lacks '{key}' (see docs/architecture.md "
                                    "Captions); re-run captioning for this slide")
    sid = rec["slide_id"]
    if sid != slide_id:
        problem = slide_id_problem(sid)
        why = problem if problem else (f"is not this file's slide {slide_id!r} (a <slide>.jsonl "
                                       "holds that slide's records only)")
        raise DatasetInputError(f"{where}, field 'slide_id': {sid!r} {why}; fix the record or "
                                "re-run captioning for this slide")
    for key in ("x", "y"):
        if not _is_coord(rec[key]):
            raise DatasetInputError(f"{where}, field '{key}': {rec[key]!r} is not a non-negative "
                                    "integer (level-0 pixel of the patch's top-left corner)")
    for key in ("image", "caption", "file_id"):
        v = rec.get(key)
        if v is not None and not isinstance(v, str):
            raise DatasetInputError(f"{where}, field '{key}': expected a string, got "
                                    f"{type(v).__name__} {v!r}")
    image = rec.get("image")
    if image is not None and "\0" in image:
        raise DatasetInputError(f"{where}, field 'image': contains a NUL character")


def _key(r: dict) -> tuple:
    return (str(r.get("slide_id")), int(r.get("x", -1)), int(r.get("y", -1)))


def load_slide(path: str | Path) -> SlideCaptions:
    """One slide's captions: records with ``accepted is True`` vs the rest (+ the rejects file)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"caption file {path} does not exist (run captioning for it; "
                                "a .partial.jsonl beside it means the slide is unfinished)")
    slide_id = slide_id_of(path)
    problem = slide_id_problem(slide_id)
    if problem is not None:
        raise DatasetInputError(f"{path}: the file name gives slide id {slide_id!r}, which "
                                f"{problem}; per-slide caption files are <slide_id>.jsonl with a "
                                "safe slide id (rename the slide, see pathgen.slide_tables)")
    sc = SlideCaptions(slide_id, path)
    recs = []
    for line, r in read_jsonl_lines(path):
        where = f"{path} line {line}"
        check_record(r, where, slide_id, need_caption=True)
        sc.origin[id(r)] = where
        recs.append(r)
        (sc.accepted if r.get("accepted") is True else sc.rejected).append(r)
    rejects, summary = companions(path)
    if rejects.exists():
        seen = {_key(r) for r in recs}
        for line, r in read_jsonl_lines(rejects):
            where = f"{rejects} line {line}"
            check_record(r, where, slide_id, need_caption=False)
            if _key(r) not in seen:
                sc.origin[id(r)] = where
                sc.rejected.append(r)
    if summary.exists():
        try:
            sc.summary = json.loads(summary.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            log.warning("%s is not valid JSON; ignored in the card", summary)
        if not isinstance(sc.summary, (dict, type(None))):
            log.warning("%s is not a JSON object; ignored in the card", summary)
            sc.summary = None
    return sc
