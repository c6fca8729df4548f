"""Run one per-slide stage over one chunk of slides, slide by slide, quarantining failures.

For each member slide: skip it when its state record is `done` with the current fingerprint
and its outputs exist (finished, fresh work is never redone); mark it `blocked` when its
upstream stage did not finish; otherwise run the stage's per-slide function (the same
library call the `pathgen` CLI subcommand makes) and record `done`, or `failed` with the
error and the fix. Then write the chunk outcome file (the job's declared output). With
`on_slide_error: fail` the job still finishes the chunk, then exits non-zero.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

from .atomic import write_json, write_text
from .config import ConfigError, PathgenConfig
from .paths import Layout
from .slide_state import (BLOCKED, DONE, FAILED, fingerprint, read_record,
                          write_record)

log = logging.getLogger("pathgen.chunk")

# Stage -> the stage whose per-slide outputs it reads (None: reads the slide file).
UPSTREAM = {"demo": None, "tile": "demo", "features": "tile", "select": "features",
            "caption": "select"}
# Caption items that failed (below max_failed_fraction) are retried on this many later runs.
MAX_ITEM_RETRY_RUNS = 3


class ChunkFailed(RuntimeError):
    """Strict mode (`on_slide_error: fail`): some slides of the chunk failed."""


@dataclass
class StageContext:
    """What a chunk job knows: the config, the rule's params and its threads."""

    cfg: PathgenConfig
    settings: Any = None
    extra: dict = field(default_factory=dict)
    threads: int = 1
    log_path: str | None = None

    @cached_property
    def layout(self) -> Layout:
        return Layout(self.cfg)

    @cached_property
    def slides(self):
        from .slides import list_slides

        return list_slides(self.cfg)

    def slide_path(self, slide: str) -> Path:
        """The member's slide file: from the rule's ``members`` param (slide -> file, made at
        parse time), so a job never re-lists the run's slides; the slide list is read only when
        a caller gives bare member ids (tests, old params)."""
        members = self.extra.get("members")
        if isinstance(members, dict) and members.get(slide):
            return Path(members[slide])
        try:
            return Path(self.slides[slide].path)
        except KeyError:
            raise ConfigError(f"slide {slide!r} is in the chunk but not in this run's slide list "
                              "(slides.dir / slides.sample_sheet)") from None

    cache: dict = field(default_factory=dict)  # per-job state of a stage (e.g. the encoder)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def fix_for(exc: BaseException, log_path: str | None) -> str:
    """The user's next step for a failed slide."""
    # SlideError without importing the slide readers (only stages that read slides raise it)
    slide_error = getattr(sys.modules.get("pathgen.wsi.slide"), "SlideError", ())
    see = f"; the traceback is in {log_path}" if log_path else ""
    if isinstance(exc, FileNotFoundError):
        return (f"the file {exc.filename or ''} is missing: restore it or fix its path "
                f"(slides.dir / slides.sample_sheet), then rerun the same command{see}")
    if slide_error and isinstance(exc, slide_error):
        return ("fix or replace the slide file, or give its µm/px (slides.mpp_overrides or "
                f"slides.default_mpp) if it has none, then rerun the same command{see}")
    if isinstance(exc, ConfigError):
        return f"fix the config key or file named in the error, then rerun{see}"
    if isinstance(exc, MemoryError):
        return f"raise resources.<rule>.mem_mb (or lower the batch size), then rerun{see}"
    return f"see the error{see}; once the cause is fixed, rerun: only this slide is redone"


# -- stages -------------------------------------------------------------------------------------
def stage_module(stage: str):
    """The per-slide functions of a stage (pathgen/chunk_stages/<stage>.py): ``run(ctx, slide)``,
    ``outputs(layout, slide)`` and ``input_key(ctx, slide)``. Imported by name so that each
    rule's environment only needs what its own stage imports."""
    import importlib

    return importlib.import_module(f"pathgen.chunk_stages.{stage}")


# -- the chunk loop ------------------------------------------------------------------------------
def _failure(base: dict, exc: Exception, fp, attempts: int, ctx: StageContext, **timing) -> dict:
    return {**base, "status": FAILED, "fingerprint": fp, "error": f"{type(exc).__name__}: {exc}",
            "fix": fix_for(exc, ctx.log_path), "attempts": attempts, "finished": now(),
            "log": ctx.log_path, **timing}


def _slide_record(stage: str, mod, ctx: StageContext, slide: str, upstream: str | None,
                  prev: dict | None) -> dict:
    """This slide's new state record, or ``prev`` itself when its finished work is fresh."""
    L, base = ctx.layout, {"slide_id": slide, "stage": stage}
    prev_attempts = (prev or {}).get("attempts", 0)
    up = read_record(L.slide_state(upstream, slide)) if upstream else None
    if upstream and (up is None or up.get("status") != DONE):
        why = (f"upstream stage '{upstream}' {up.get('status')}: {up.get('error', '')}" if up
               else f"upstream stage '{upstream}' has no record")
        return {**base, "status": BLOCKED, "fingerprint": None, "error": why,
                "fix": f"see `pathgen status`: fix the '{upstream}' failure first",
                "attempts": prev_attempts, "finished": now()}
    try:
        fp = fingerprint(stage, ctx.settings, mod.input_key(ctx, slide),
                         up.get("fingerprint") if up else None)
    except Exception as exc:  # e.g. a slide no longer in the slide list
        return _failure(base, exc, None, prev_attempts + 1, ctx)
    redo = getattr(mod, "needs_redo", lambda record: False)
    if (prev and prev.get("status") == DONE and prev.get("fingerprint") == fp
            and all(p.exists() for p in mod.outputs(L, slide)) and not redo(prev)):
        return prev
    attempts = prev_attempts + 1 if (prev or {}).get("fingerprint") == fp else 1
    started, t0 = now(), time.perf_counter()
    try:
        info = mod.run(ctx, slide) or {}
    except Exception as exc:  # quarantine this slide; the chunk goes on
        log.error("%s %s failed (attempt %d): %s: %s\n%s", stage, slide, attempts,
                  type(exc).__name__, exc, traceback.format_exc())
        return _failure(base, exc, fp, attempts, ctx, started=started,
                        seconds=round(time.perf_counter() - t0, 3))
    return {**base, "status": DONE, "fingerprint": fp, "error": None, "fix": None,
            "attempts": attempts, "started": started, "finished": now(),
            "seconds": round(time.perf_counter() - t0, 3), "info": info}


def run_chunk(stage: str, chunk: str, members: list[str], ctx: StageContext, out: str | Path,
              on_error: str = "quarantine") -> dict:
    """Run `stage` for each member slide; write and return the chunk outcome."""
    L = ctx.layout
    mod = stage_module(stage)
    upstream = UPSTREAM[stage] if (stage != "tile" or ctx.cfg.uses_demo) else None
    outcome, t_chunk = [], time.perf_counter()
    counts = {DONE: 0, FAILED: 0, BLOCKED: 0, "reused": 0}
    for slide in members:
        rec_path = L.slide_state(stage, slide)
        prev = read_record(rec_path)
        rec = _slide_record(stage, mod, ctx, slide, upstream, prev)
        if rec is prev:
            counts["reused"] += 1
        else:
            write_record(rec_path, rec)
        counts[rec["status"]] += 1
        outcome.append({"slide_id": slide, "status": rec["status"], "fingerprint": rec["fingerprint"],
                        **({"error": rec["error"]} if rec["status"] == FAILED else {})})
    doc = {"stage": stage, "chunk": chunk, "members": outcome, "counts": counts}
    write_json(out, doc)
    log.info("%s %s: %d slides: %d done (%d reused), %d failed, %d blocked in %.1f s", stage, chunk,
             len(members), counts[DONE], counts["reused"], counts[FAILED], counts[BLOCKED],
             time.perf_counter() - t_chunk)
    after = getattr(mod, "after_chunk", None)
    if after is not None:
        after(ctx, chunk, members)
    bad = [m for m in outcome if m["status"] != DONE]
    if bad and on_error == "fail":
        raise ChunkFailed(f"{stage} {chunk}: {len(bad)} of {len(members)} slides did not finish "
                          f"({', '.join(m['slide_id'] for m in bad[:5])}); on_slide_error: fail. "
                          "See `pathgen status` for each error and its fix.")
    return doc


def read_retry(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {"generation": 0, "runs": 0}


def bump_caption_retry(path: Path, members: list[str], L: Layout) -> None:
    """Caption items that failed make the next run retry them: the rule's `retry` param is
    this file's generation, so bumping it re-triggers the chunk job exactly once per run, up
    to MAX_ITEM_RETRY_RUNS runs in a row."""
    failed_items = sum((read_record(L.slide_state("caption", s)) or {}).get("info", {})
                       .get("n_failed", 0) or 0 for s in members)
    state = read_retry(path)
    if failed_items and state["runs"] < MAX_ITEM_RETRY_RUNS:
        state = {"generation": state["generation"] + 1, "runs": state["runs"] + 1,
                 "failed_items": failed_items}
        log.warning("%d caption items failed; they are retried on the next run (%d of %d)",
                    failed_items, state["runs"], MAX_ITEM_RETRY_RUNS)
        write_text(path, json.dumps(state) + "\n")
    elif not failed_items and state["runs"]:
        write_text(path, json.dumps({"generation": state["generation"], "runs": 0}) + "\n")


def retry_generation(path: Path) -> int:
    """The rule param that re-triggers a caption chunk whose items failed (parse time)."""
    if not os.path.exists(path):
        return 0
    return int(read_retry(path).get("generation", 0))


def run_chunk_job(stage: str, sm) -> dict:
    """Entry point of the chunk rules' scripts (`sm` is Snakemake's `snakemake` object)."""
    from .config import validate_config
    from .logs import setup_logging

    setup_logging(sm.log[0])
    cfg = validate_config(sm.config, "the workflow config")
    params = dict(sm.params.items())
    ctx = StageContext(cfg, settings=params.get("settings"), extra=params, threads=sm.threads,
                       log_path=str(sm.log[0]))
    return run_chunk(stage, sm.wildcards.chunk, list(params["members"]), ctx, sm.output.done,
                     on_error=cfg.on_slide_error)
