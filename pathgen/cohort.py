"""The run's cohort: which slides a run processes, from a folder (recursive globs), a sample
sheet, or the demo (``list_slides``). Slide files themselves are opened by :mod:`pathgen.wsi`.

Slide ids are checked (a safe character set, never ending like a stage's side file) and
every table the config names (sample sheet, mpp overrides, dataset file ids) is read with
:mod:`pathgen.slide_tables`: a problem is a :class:`ConfigError` naming the file and line, the
column and the fix, raised when the Snakefile is parsed (``list_slides``), not in a job hours
later. Glue: it reads the whole config (library code uses :mod:`pathgen.slide_tables`).
"""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path

from .config import ConfigError, PathgenConfig
from .demo.cohort import demo_slide_id
from .paths import Layout
# slide ids and tables, re-exported: the Snakefile and the tests import them from here
from .slide_tables import (RESERVED_SUFFIXES, SLIDE_ID_PATTERN, SlideRecord,  # noqa: F401
                           check_slide_id, read_id_table, read_mpp_overrides, read_sample_sheet,
                           read_table, slide_id_from_path, slide_id_problem)


def demo_slide_ids(cfg: PathgenConfig) -> list[str]:
    return [demo_slide_id(i) for i in range(cfg.demo.n_slides)]


def demo_slide_path(cfg: PathgenConfig, slide_id: str) -> Path:
    return Layout(cfg).demo_slide(slide_id)


def _glob_dir(root: Path, patterns: list[str]) -> list[Path]:
    if not root.is_dir():
        raise ConfigError(f"slides.dir {root} is not a folder; fix slides.dir in the config")
    regexes = [re.compile(fnmatch.translate(p.lower().removeprefix("**/"))) for p in patterns]
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        folder = Path(dirpath)
        for fn in sorted(filenames):
            if fn.startswith("."):
                continue
            if any(rx.match(fn.lower()) for rx in regexes):
                found.append(folder / fn)
    return found


def list_slides(cfg: PathgenConfig) -> dict[str, SlideRecord]:
    """Return slide_id -> record, in a stable order. Duplicate ids are an error.

    Also checks the other tables the config names (slides.mpp_overrides, dataset.file_ids),
    so a bad table fails the Snakefile parse naming its file and line, not a job later.
    A sample-sheet row whose slide file is missing is kept: its chunk job quarantines it.
    """
    if cfg.uses_demo:
        recs = [SlideRecord(s, demo_slide_path(cfg, s), cfg.demo.mpp) for s in demo_slide_ids(cfg)]
    elif cfg.slides.sample_sheet is not None:
        recs = read_sample_sheet(cfg.slides.sample_sheet)
    else:
        recs = [SlideRecord(check_slide_id(slide_id_from_path(p), str(p)), p)
                for p in _glob_dir(cfg.slides.dir, cfg.slides.patterns)]
    out: dict[str, SlideRecord] = {}
    for rec in recs:
        if rec.slide_id in out:
            raise ConfigError(f"duplicate slide id {rec.slide_id!r}: {out[rec.slide_id].path} and "
                              f"{rec.path}. Slide ids must be unique; rename one or use a sample sheet.")
        out[rec.slide_id] = rec
    check_tables(cfg)
    return out


def check_tables(cfg: PathgenConfig, slides: dict[str, SlideRecord] | None = None) -> None:
    """Check slides.mpp_overrides and dataset.file_ids; with ``slides``, ids not among them
    are warned about (the Snakefile does that once, via tiling's mpp_overrides_for_run)."""
    if cfg.slides.mpp_overrides is not None:
        read_mpp_overrides(cfg.slides.mpp_overrides, known=slides)
    if cfg.dataset.file_ids is not None:
        read_id_table(cfg.dataset.file_ids, "dataset.file_ids", "file_id", known=slides)
