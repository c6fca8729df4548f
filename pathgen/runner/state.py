"""Per-slide state records: what each per-slide stage did to each slide, and why not.

One JSON file per (stage, slide) beside the stage's outputs (`Layout.slide_state`), written
atomically by the chunk job after each slide:

    {"slide_id", "stage", "status": "done" | "failed" | "blocked", "fingerprint",
     "error", "fix", "attempts", "started", "finished", "seconds", "info"}

`fingerprint` hashes everything that shapes the slide's outputs (the stage's settings, the
slide file's size and mtime or the upstream stage's fingerprint): a record that is `done`
with the current fingerprint, and whose outputs exist, is reused without redoing the work.
`blocked` means an upstream stage failed for this slide. These files are not Snakemake
outputs (Snakemake deletes a job's outputs before it reruns), so they survive reruns and
carry attempts and fingerprints across them. `pathgen status` tabulates them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable

from ..atomic import write_json
from .stage import STAGE_NAMES

STAGES = STAGE_NAMES
DONE, FAILED, BLOCKED = "done", "failed", "blocked"


def fingerprint(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def file_identity(path: str | Path) -> list:
    """(path, size, mtime_ns) of a file, or its absence: a changed/fixed file changes it."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return [str(p), "missing"]
    return [str(p), st.st_size, st.st_mtime_ns]


def read_record(path: str | Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None  # a torn or foreign file counts as "never ran": the slide is redone


def write_record(path: str | Path, record: dict) -> None:
    write_json(path, record)


# -- chunk outcome files (the chunk jobs' declared outputs) ------------------------------------
def read_chunk(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def slides_with_status(chunk_files: Iterable[str | Path], status: str = DONE) -> list[str]:
    """Slides of the given chunk outcome files that ended with `status`, in chunk order."""
    out = []
    for f in chunk_files:
        out += [m["slide_id"] for m in read_chunk(f)["members"] if m["status"] == status]
    return out


def failed_members(chunk_files: Iterable[str | Path]) -> list[dict]:
    """Members of the chunk outcome files that did not finish (failed or blocked)."""
    out = []
    for f in chunk_files:
        doc = read_chunk(f)
        out += [{**m, "stage": doc["stage"]} for m in doc["members"] if m["status"] != DONE]
    return out


# -- status table --------------------------------------------------------------------------------
def collect(state_dirs: dict[str, Path], slide_ids: list[str]) -> dict[str, dict[str, dict]]:
    """slide -> stage -> record, from each stage's state folder (Layout.slide_state_dir);
    stages without a record are absent."""
    table: dict[str, dict[str, dict]] = {s: {} for s in slide_ids}
    for stage, d in state_dirs.items():
        state = Path(d)
        if not state.is_dir():
            continue
        for f in state.glob("*.json"):
            rec = read_record(f)
            if rec is not None and rec.get("slide_id") in table:
                table[rec["slide_id"]][stage] = rec
    return table


CAPTION_ONLY = ("select", "caption")


def status_table(table: dict[str, dict[str, dict]], stages: list[str], only_problems: bool = False,
                 not_captioned: set[str] = frozenset()) -> tuple[str, dict[str, dict[str, int]]]:
    """A plain-text slides x stages table and per-stage counts (done/failed/blocked/pending).
    Slides in ``not_captioned`` (the demo's holdout) show `-` for selection and captioning."""
    counts = {st: {DONE: 0, FAILED: 0, BLOCKED: 0, "pending": 0} for st in stages}
    rows = []
    for slide, recs in table.items():
        cells = []
        for st in stages:
            if slide in not_captioned and st in CAPTION_ONLY:
                cells.append("-")
                continue
            status = recs.get(st, {}).get("status", "pending")
            counts[st][status if status in counts[st] else "pending"] += 1
            cells.append(status)
        problem = [r for r in recs.values() if r.get("status") == FAILED]
        if only_problems and not problem:
            continue
        why = ""
        if problem:
            r = problem[0]
            why = f"{r['stage']}: {r.get('error', '')} | fix: {r.get('fix', '')}"
        rows.append([slide, *cells, why])
    header = ["slide", *stages, "why"]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r[:-1], widths)) + ("  " + r[-1] if r[-1]
             else "") for r in [header, *rows]]
    lines.append("")
    for st in stages:
        c = counts[st]
        lines.append(f"{st:>9}: {c[DONE]} done, {c[FAILED]} failed, {c[BLOCKED]} blocked, "
                     f"{c['pending']} pending")
    return "\n".join(lines), counts
