"""Run one per-slide stage over one chunk of slides, quarantining each slide's failure.

For each member slide: reuse it when its state record is `done` with the current fingerprint
and its outputs exist (finished, fresh work is never redone); mark it `blocked` when its
upstream stage did not finish; otherwise run the stage (slide by slide, or the whole set in
one go with ``Stage.run_many``) and record `done`, or `failed` with the error and the fix.
Then write the chunk outcome file (the job's declared output). With `on_slide_error: fail`
the job still finishes the chunk, then exits non-zero.

A failure of the job's own machinery (:class:`InfrastructureError`: a model server that does
not start or keeps dying) is not a bad slide: no slide is quarantined for it, finished slides
keep their records, and the job fails so Snakemake's retry applies.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from ..atomic import write_json
from ..config import ConfigError
from .context import ChunkContext
from .stage import Stage, get_stage
from .state import BLOCKED, DONE, FAILED, fingerprint, read_record, write_record

log = logging.getLogger("pathgen.chunk")


class ChunkFailed(RuntimeError):
    """Strict mode (`on_slide_error: fail`): some slides of the chunk failed."""


class InfrastructureError(RuntimeError):
    """The job's own compute failed (not a slide): the job fails, no slide is quarantined."""


class JobStopped(BaseException):
    """SIGTERM (SLURM walltime or scancel, Snakemake stopping): unwind so `close` hooks run."""


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


class _Chunk:
    """One chunk job's pass over its members: decisions, runs, records, counts."""

    def __init__(self, stage: Stage, ctx: ChunkContext, upstream: str | None):
        self.stage, self.ctx, self.upstream = stage, ctx, upstream
        self.records: dict[str, dict] = {}
        self.fps: dict[str, str] = {}
        self.attempts: dict[str, int] = {}
        self.started: dict[str, tuple[str, float]] = {}
        self.reused = 0
        self.opened = False

    def _base(self, slide: str) -> dict:
        return {"slide_id": slide, "stage": self.stage.name}

    def _failure(self, slide: str, exc: BaseException, fp, attempts: int, **timing) -> dict:
        return {**self._base(slide), "status": FAILED, "fingerprint": fp,
                "error": f"{type(exc).__name__}: {exc}", "fix": fix_for(exc, self.ctx.log_path),
                "attempts": attempts, "finished": now(), "log": self.ctx.log_path, **timing}

    def decide(self, slide: str) -> bool:
        """Record a reused/blocked/unfingerprintable slide; True when it must run."""
        ctx, st = self.ctx, self.stage
        prev = read_record(ctx.state_file(st.name, slide))
        prev_attempts = (prev or {}).get("attempts", 0)
        up = read_record(ctx.state_file(self.upstream, slide)) if self.upstream else None
        if self.upstream and (up is None or up.get("status") != DONE):
            why = (f"upstream stage '{self.upstream}' {up.get('status')}: {up.get('error', '')}"
                   if up else f"upstream stage '{self.upstream}' has no record")
            self._write(slide, {**self._base(slide), "status": BLOCKED, "fingerprint": None,
                                "error": why, "fix": f"see `pathgen status`: fix the "
                                f"'{self.upstream}' failure first",
                                "attempts": prev_attempts, "finished": now()})
            return False
        try:
            fp = fingerprint(st.name, ctx.settings, st.input_key(ctx, slide),
                             up.get("fingerprint") if up else None)
        except Exception as exc:  # e.g. a slide no longer in the slide list
            self._write(slide, self._failure(slide, exc, None, prev_attempts + 1))
            return False
        if (prev and prev.get("status") == DONE and prev.get("fingerprint") == fp
                and all(ctx.file(k, slide).exists() for k in st.outputs)
                and not st.needs_redo(prev)):
            self.records[slide] = prev
            self.reused += 1
            return False
        self.fps[slide] = fp
        self.attempts[slide] = (prev_attempts + 1
                                if (prev or {}).get("fingerprint") == fp else 1)
        return True

    def _write(self, slide: str, rec: dict) -> None:
        write_record(self.ctx.state_file(self.stage.name, slide), rec)
        self.records[slide] = rec

    def begin(self, slide: str) -> None:
        self.started[slide] = (now(), time.perf_counter())

    def finish(self, slide: str, result) -> None:
        """Record the outcome of a slide that ran: its info dict, or the exception it raised."""
        if isinstance(result, InfrastructureError):
            raise result
        started, t0 = self.started.get(slide, (now(), time.perf_counter()))
        secs = round(time.perf_counter() - t0, 3)
        fp, attempts = self.fps[slide], self.attempts[slide]
        if isinstance(result, BaseException):
            tb = "".join(traceback.format_exception(result))
            log.error("%s %s failed (attempt %d): %s: %s\n%s", self.stage.name, slide, attempts,
                      type(result).__name__, result, tb)
            self._write(slide, self._failure(slide, result, fp, attempts, started=started,
                                             seconds=secs))
            return
        self._write(slide, {**self._base(slide), "status": DONE, "fingerprint": fp,
                            "error": None, "fix": None, "attempts": attempts, "started": started,
                            "finished": now(), "seconds": secs, "info": result or {}})

    def open(self) -> None:
        if not self.opened and self.stage.open is not None:
            self.stage.open(self.ctx)  # raises: the job fails, nothing is quarantined
        self.opened = True

    def run(self, todo: list[str]) -> None:
        st, ctx = self.stage, self.ctx
        if not todo:
            return
        self.open()
        if st.run_many is not None:
            for s in todo:
                self.begin(s)
            st.run_many(ctx, todo, self.finish)
            missing = [s for s in todo if s not in self.records]
            if missing:
                raise InfrastructureError(f"{st.name} {ctx.chunk}: run_many reported no outcome "
                                          f"for {', '.join(missing[:5])}")
            return
        for slide in todo:
            self.begin(slide)
            try:
                result = st.run(ctx, slide)
            except InfrastructureError:
                raise
            except Exception as exc:  # quarantine this slide; the chunk goes on
                result = exc
            self.finish(slide, result)


def _on_sigterm(signum, frame):
    raise JobStopped(f"signal {signum}: the job was stopped (walltime, scancel or snakemake)")


def run_chunk(stage: Stage | str, ctx: ChunkContext, out: str | Path,
              on_error: str = "quarantine", upstream: str | None = ...) -> dict:
    """Run ``stage`` for each member slide of ``ctx``; write and return the chunk outcome."""
    stage = get_stage(stage) if isinstance(stage, str) else stage
    if upstream is ...:
        upstream = ctx.param("upstream", stage.upstream)
    t_chunk = time.perf_counter()
    pass_ = _Chunk(stage, ctx, upstream)
    members = list(ctx.members)
    try:
        pass_.run([s for s in members if pass_.decide(s)])
    finally:
        if pass_.opened and stage.close is not None:
            stage.close(ctx)
    counts = {DONE: 0, FAILED: 0, BLOCKED: 0, "reused": pass_.reused}
    outcome = []
    for slide in members:
        rec = pass_.records[slide]
        counts[rec["status"]] += 1
        outcome.append({"slide_id": slide, "status": rec["status"],
                        "fingerprint": rec["fingerprint"],
                        **({"error": rec["error"]} if rec["status"] == FAILED else {})})
    doc = {"stage": stage.name, "chunk": ctx.chunk, "members": outcome, "counts": counts}
    write_json(out, doc)
    log.info("%s %s: %d slides: %d done (%d reused), %d failed, %d blocked in %.1f s", stage.name,
             ctx.chunk, len(members), counts[DONE], counts["reused"], counts[FAILED],
             counts[BLOCKED], time.perf_counter() - t_chunk)
    if stage.after_chunk is not None:
        stage.after_chunk(ctx)
    bad = [m for m in outcome if m["status"] != DONE]
    if bad and on_error == "fail":
        raise ChunkFailed(f"{stage.name} {ctx.chunk}: {len(bad)} of {len(members)} slides did "
                          f"not finish ({', '.join(m['slide_id'] for m in bad[:5])}); "
                          "on_slide_error: fail. See `pathgen status` for each error and its fix.")
    return doc


def run_chunk_job(stage_name: str, sm, ctx: ChunkContext | None = None) -> dict:
    """Entry point of the chunk rules' script (``sm``: Snakemake's ``snakemake`` object).
    The context comes from the rule's params and inputs only; a GPU stage run locally claims
    a device slot of its own first (pathgen.gpu_slots), before torch or a server starts."""
    from ..logs import setup_logging

    setup_logging(sm.log[0])
    stage = get_stage(stage_name)
    ctx = ctx or ChunkContext.from_job(stage_name, sm)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        with _device_slot(stage, ctx, sm):
            return run_chunk(stage, ctx, sm.output.done,
                             on_error=ctx.param("on_slide_error", "quarantine"))
    finally:
        signal.signal(signal.SIGTERM, previous)


def _device_slot(stage: Stage, ctx: ChunkContext, sm):
    """A GPU slot of its own for a job of a GPU stage run locally (SLURM's assignment stays)."""
    import contextlib

    if stage.device is None:
        return contextlib.nullcontext()
    from ..gpu_slots import job_gpus

    return job_gpus(sm, stage.device(ctx))
