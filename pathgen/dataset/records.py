"""Reading the captioning stage's per-slide files (docs/architecture.md "Captions"):
``<slide>.jsonl`` (final records), ``<slide>.rejects.jsonl`` and ``<slide>.summary.json``."""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass
class SlideCaptions:
    slide_id: str
    path: Path
    accepted: list[dict] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    summary: dict | None = None

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


def companions(jsonl: Path) -> tuple[Path, Path]:
    stem = jsonl.name[: -len(".jsonl")] if jsonl.name.endswith(".jsonl") else jsonl.stem
    return jsonl.with_name(f"{stem}.rejects.jsonl"), jsonl.with_name(f"{stem}.summary.json")


def read_jsonl(path: Path) -> list[dict]:
    out = []
    with path.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path} line {i} is not valid JSON ({err}); re-run captioning "
                                 "for this slide") from None
            if not isinstance(rec, dict):
                raise ValueError(f"{path} line {i}: expected a JSON object per line")
            out.append(rec)
    return out


def _key(r: dict) -> tuple:
    return (str(r.get("slide_id")), int(r.get("x", -1)), int(r.get("y", -1)))


def load_slide(path: str | Path) -> SlideCaptions:
    """One slide's captions: records with ``accepted is True`` vs the rest (+ the rejects file)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"caption file {path} does not exist (run captioning for it; "
                                "a .partial.jsonl beside it means the slide is unfinished)")
    recs = read_jsonl(path)
    slide_id = path.name[: -len(".jsonl")] if path.name.endswith(".jsonl") else path.stem
    sc = SlideCaptions(slide_id, path)
    for i, r in enumerate(recs):
        for key in ("slide_id", "x", "y", "caption"):
            if key not in r:
                raise ValueError(f"{path} record {i + 1} lacks '{key}' (see docs/architecture.md "
                                 "Captions); re-run captioning for this slide")
        (sc.accepted if r.get("accepted") is True else sc.rejected).append(r)
    rejects, summary = companions(path)
    if rejects.exists():
        seen = {_key(r) for r in recs}
        sc.rejected += [r for r in read_jsonl(rejects) if _key(r) not in seen]
    if summary.exists():
        try:
            sc.summary = json.loads(summary.read_text())
        except json.JSONDecodeError:
            log.warning("%s is not valid JSON; ignored in the card", summary)
    return sc
