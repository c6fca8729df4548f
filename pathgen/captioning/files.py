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


# -- managed serving ---------------------------------------------------------------------------
PEFT_ADAPTER_CONFIG = "adapter_config.json"  # peft's name in a LoRA adapter folder
SERVER_LOGS_DIR = "server_logs"              # `pathgen caption`: beside the output
CHUNK_PROGRESS_SUFFIX = ".progress.json"     # a running caption chunk's progress (runner)


def adapter_config_file(adapter_dir: str | Path) -> Path:
    return Path(adapter_dir) / PEFT_ADAPTER_CONFIG


def server_log_file(log_dir: str | Path, index: int, n_servers: int) -> Path:
    """A managed server's output: server.log (server0.log, server1.log, ... when several)."""
    return Path(log_dir) / ("server.log" if n_servers == 1 else f"server{index}.log")


def chunk_progress_file(chunk_done: str | Path) -> Path:
    """Beside a caption chunk's outcome file: <chunk>.progress.json."""
    out = Path(chunk_done)
    return out.with_name(out.name.removesuffix(".json") + CHUNK_PROGRESS_SUFFIX)
