"""File names of the captioning stage: ``<features dir>/captions_<tag>/<slide>.jsonl`` and
its side files (docs/architecture.md "Captions").

No config import. ``pathgen.paths`` still re-exports these names for the captioning modules
that import them from there.
"""

from __future__ import annotations

from pathlib import Path

CAPTIONS_DIR_PREFIX = "captions_"           # captions_<captioning tag>/
CAPTIONS_REJECTS_SUFFIX = ".rejects.jsonl"  # records the filters rejected (or that failed)
CAPTIONS_SUMMARY_SUFFIX = ".summary.json"   # per-slide counts, reasons, timings
CAPTIONS_PARTIAL_SUFFIX = ".partial.jsonl"  # append-only agent outputs: the resume cache


def captions_dir(features_dir: str | Path, tag: str) -> Path:
    """<features dir>/captions_<tag> (the tag hashes what shapes the captions)."""
    return Path(features_dir) / f"{CAPTIONS_DIR_PREFIX}{tag}"


def slide_captions_file(captions_dir: str | Path, slide: str) -> Path:
    """<captions dir>/<slide>.jsonl, the name Layout.captions uses (jobs given the folder)."""
    return Path(captions_dir) / f"{slide}.jsonl"


def caption_files(captions_jsonl: str | Path) -> dict[str, Path]:
    """One slide's captioning files, named from its final ``<slide>.jsonl``: captions,
    rejects, summary and the partial (resume) file, all in the same folder."""
    out = Path(captions_jsonl)
    stem = out.name.removesuffix(".jsonl")
    return {"captions": out, "rejects": out.with_name(stem + CAPTIONS_REJECTS_SUFFIX),
            "summary": out.with_name(stem + CAPTIONS_SUMMARY_SUFFIX),
            "partial": out.with_name(stem + CAPTIONS_PARTIAL_SUFFIX)}
