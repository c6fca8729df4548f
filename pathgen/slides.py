"""Which slides a run processes: from a folder (recursive globs), a sample sheet, or the demo.

Slide ids become file names and Snakemake wildcards, so they are restricted to a safe
character set and never reach a shell.
"""

from __future__ import annotations

import csv
import fnmatch
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .config import ConfigError, PathgenConfig

SLIDE_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_SLIDE_ID_RE = re.compile(rf"^{SLIDE_ID_PATTERN}$")
# Extensions whose stem is not enough to be unique/meaningful are still stripped once.
_MULTI_EXT = (".ome.tiff", ".ome.tif")


@dataclass(frozen=True)
class SlideRecord:
    slide_id: str
    path: Path
    mpp: float | None = None
    case_id: str | None = None
    label: str | None = None


def check_slide_id(slide_id: str, origin: str) -> str:
    if not _SLIDE_ID_RE.match(slide_id):
        raise ConfigError(
            f"slide id {slide_id!r} (from {origin}) has characters outside [A-Za-z0-9._-] or does "
            "not start with a letter/digit. Rename the file, or list it in a sample sheet "
            "(slides.sample_sheet: CSV with slide_id,path) with a safe slide_id.")
    return slide_id


def slide_id_from_path(path: Path) -> str:
    name = path.name
    for ext in _MULTI_EXT:
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return path.stem


def demo_slide_ids(cfg: PathgenConfig) -> list[str]:
    from .demo.cohort import demo_slide_id

    return [demo_slide_id(i) for i in range(cfg.demo.n_slides)]


def demo_slide_path(cfg: PathgenConfig, slide_id: str) -> Path:
    return cfg.demo.out_dir / "slides" / f"{slide_id}.svs"


def _glob_dir(root: Path, patterns: list[str]) -> list[Path]:
    if not root.is_dir():
        raise ConfigError(f"slides.dir {root} is not a folder; fix slides.dir in the config")
    regexes = [re.compile(fnmatch.translate(p.lower().removeprefix("**/"))) for p in patterns]
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            if fn.startswith("."):
                continue
            if any(rx.match(fn.lower()) for rx in regexes):
                found.append(Path(dirpath) / fn)
    return found


def _read_sample_sheet(path: Path) -> list[SlideRecord]:
    if not path.exists():
        raise ConfigError(f"slides.sample_sheet {path} does not exist")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        cols = set(reader.fieldnames or [])
        if not {"slide_id", "path"} <= cols:
            raise ConfigError(f"sample sheet {path} needs columns slide_id,path "
                              f"(optional mpp, case_id, label); found {sorted(cols)}")
        out = []
        for i, row in enumerate(reader, start=2):
            sid = check_slide_id((row["slide_id"] or "").strip(), f"{path} line {i}")
            p = Path(row["path"].strip())
            if not p.is_absolute():
                p = path.parent / p
            mpp = row.get("mpp")
            try:
                mpp_v = float(mpp) if mpp not in (None, "") else None
            except ValueError:
                raise ConfigError(f"{path} line {i}: mpp {mpp!r} is not a number") from None
            out.append(SlideRecord(sid, p, mpp_v, (row.get("case_id") or None), (row.get("label") or None)))
        return out


def list_slides(cfg: PathgenConfig) -> dict[str, SlideRecord]:
    """Return slide_id -> record, in a stable order. Duplicate ids are an error."""
    if cfg.uses_demo:
        recs = [SlideRecord(s, demo_slide_path(cfg, s), cfg.demo.mpp) for s in demo_slide_ids(cfg)]
    elif cfg.slides.sample_sheet is not None:
        recs = _read_sample_sheet(cfg.slides.sample_sheet)
    else:
        recs = [SlideRecord(check_slide_id(slide_id_from_path(p), str(p)), p)
                for p in _glob_dir(cfg.slides.dir, cfg.slides.patterns)]
    out: dict[str, SlideRecord] = {}
    for rec in recs:
        if rec.slide_id in out:
            raise ConfigError(f"duplicate slide id {rec.slide_id!r}: {out[rec.slide_id].path} and "
                              f"{rec.path}. Slide ids must be unique; rename one or use a sample sheet.")
        out[rec.slide_id] = rec
    return out


def read_mpp_overrides(path: Path | None) -> dict[str, float]:
    """CSV slide_id,mpp -> dict. Missing file is an error naming the key."""
    if path is None:
        return {}
    if not Path(path).exists():
        raise ConfigError(f"slides.mpp_overrides {path} does not exist")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if not {"slide_id", "mpp"} <= set(reader.fieldnames or []):
            raise ConfigError(f"{path} needs columns slide_id,mpp")
        out = {}
        for i, r in enumerate(reader, start=2):
            value = (r["mpp"] or "").strip()
            if not value:
                continue
            try:
                out[r["slide_id"].strip()] = float(value)
            except ValueError:
                raise ConfigError(f"{path} line {i}: mpp {value!r} is not a number "
                                  "(expected µm/px, e.g. 0.25)") from None
        return out
