"""Caption one slide: selection CSV + patch images -> ``<slide>.jsonl`` (+ ``.rejects.jsonl``,
``.summary.json``), resumable (docs/architecture.md "Captions").

Agent outputs accumulate in ``<slide>.partial.jsonl`` (kept after completion: it caches the
agent outputs, so a rerun with other filter settings only re-filters). The final files are
written atomically once every patch has a record and failures are within
``captioning.max_failed_fraction``; otherwise the run raises and a rerun retries the failed
patches only. A failure that no item can get past (records cannot be written, the server
refuses the credentials or lacks the model) stops the run at once with
:class:`CaptioningAborted` (CaptioningWriteError, FatalRequestError); finished records are kept.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Callable

from pathgen import __version__
from pathgen.atomic import write_json
from pathgen.jsonl_store import write_jsonl

from .backends import Backend, make_backend
from .budget import TokenBudget
from .files import caption_files
from .filters import REASONS, apply_filters
from .items import CaptioningAborted, PatchItem, read_selection
from .pipeline import AgentSettings, run_items
from .prompts import load_templates
from .store import CaptioningWriteError, PartialStore, record_key

log = logging.getLogger(__name__)


class CaptioningIncomplete(RuntimeError):
    """Too many patches failed; the partial file is kept and a rerun retries them."""


def output_paths(out_jsonl: str | Path) -> dict[str, Path]:
    """captions / rejects / summary / partial of one slide (named in captioning/files.py)."""
    return caption_files(out_jsonl)


def agent_settings(ccfg) -> AgentSettings:
    templates = load_templates(ccfg.prompt_version, ccfg.prompts_dir)
    return AgentSettings(
        templates=templates, budget=TokenBudget(ccfg.clip_arch, ccfg.token_budget),
        prompt_hash=ccfg.prompt_hash(), summary_retries=ccfg.summary_retries,
        provenance={"pathgen_version": __version__, "prompt_version": ccfg.prompt_version,
                    "clip_arch": ccfg.clip_arch, "token_budget": ccfg.token_budget})


def summarize_records(records: list[dict], slide_id: str, backend: str, model: str,
                      prompt_hash: str, wall_s: float, new: int, agents: dict | None = None) -> dict:
    ok = [r for r in records if r["status"] == "ok"]
    reasons = Counter(x for r in records for x in r["reject_reasons"])
    toks = [r["n_tokens"] for r in ok if r.get("n_tokens") is not None]

    def mean_of(key):
        vals = [r["timings"][key] for r in ok if key in (r.get("timings") or {})]
        return round(statistics.fmean(vals), 3) if vals else None

    return {
        "slide_id": slide_id, "backend": backend, "model": model, "agents": agents,
        "prompt_hash": prompt_hash,
        "n_selected": len(records), "n_ok": len(ok), "n_failed": len(records) - len(ok),
        "n_accepted": sum(r["accepted"] for r in records),
        "n_rejected": sum(not r["accepted"] for r in records),
        "reject_reasons": {k: reasons.get(k, 0) for k in REASONS},
        "n_revise_changed": sum(bool(r.get("revise_changed")) for r in ok),
        "mean_revise_edit_ratio": round(statistics.fmean(
            [r["revise_edit_ratio"] for r in ok]), 4) if ok else None,
        "n_truncated": sum(bool(r.get("provenance", {}).get("truncated")) for r in ok),
        "tokens": {"mean": round(statistics.fmean(toks), 2) if toks else None,
                   "max": max(toks) if toks else None},
        "mean_seconds": {k: mean_of(k) for k in ("describe", "revise", "summarize", "total")},
        "captioned_this_run": new, "wall_s": round(wall_s, 2), "pathgen_version": __version__,
    }


class SlideRun:
    """One slide of a captioning run: its items, its open partial store and what is left."""

    def __init__(self, slide_id: str, items: list[PatchItem], out_jsonl: str | Path,
                 settings: AgentSettings, backend: Backend):
        self.slide_id, self.items, self.paths = slide_id, items, output_paths(out_jsonl)
        self.t0 = time.perf_counter()
        self.store = PartialStore(self.paths["partial"])
        self.store.__enter__()
        done = self.store.done(settings.prompt_hash)
        self.todo = [it for it in items if it.key not in done]
        self.new = 0
        log.info("%s: %d patches, %d already captioned, %d to do (%s, %s, prompt %s)",
                 self.slide_id, len(items), len(items) - len(self.todo), len(self.todo),
                 backend.name, backend.model, settings.prompt_hash)

    def append(self, rec: dict) -> None:
        """Persist one record (any OSError of the store: one error naming the file)."""
        try:
            self.store.append(rec)
        except CaptioningWriteError:
            raise
        except OSError as err:
            raise CaptioningWriteError(self.store.path, err) from err
        self.new += 1

    @property
    def complete(self) -> bool:
        return self.new >= len(self.todo)

    def close(self) -> None:
        self.store.__exit__(None, None, None)

    def finish(self, ccfg, settings: AgentSettings, backend: Backend, alignment_spec=None) -> dict:
        """Filters + the final files (atomically, captions last) once every item has a record."""
        records = []
        for it in self.items:
            rec = self.store.records.get(it.key)
            if rec is None or rec.get("prompt_hash") != settings.prompt_hash:
                raise CaptioningIncomplete(f"{self.slide_id}: patch {it.key} has no record after "
                                           "the run; rerun to resume")
            records.append(dict(rec))
        self.close()
        paths, items = self.paths, self.items
        apply_filters(records, ccfg.filters, settings.budget, [it.path for it in items],
                      alignment_spec)
        failed = [r for r in records if r["status"] != "ok"]
        if items and len(failed) > ccfg.max_failed_fraction * len(items):
            raise CaptioningIncomplete(
                f"{self.slide_id}: {len(failed)}/{len(items)} patches failed (limit "
                f"captioning.max_failed_fraction={ccfg.max_failed_fraction}); first error: "
                f"{failed[0]['error']}. Finished patches are kept in {paths['partial']}; fix the "
                "cause (server up? model name?) and rerun to retry only the failed ones.")
        summary = summarize_records(records, self.slide_id, backend.name, backend.model,
                                    settings.prompt_hash, time.perf_counter() - self.t0, self.new,
                                    backend.agent_models())
        write_jsonl(paths["rejects"], [r for r in records if not r["accepted"]])
        write_json(paths["summary"], summary)
        write_jsonl(paths["captions"], records)  # last: its existence means "slide complete"
        log.info("%s: %d accepted, %d rejected %s", self.slide_id, summary["n_accepted"],
                 summary["n_rejected"], {k: v for k, v in summary["reject_reasons"].items() if v})
        return summary


def caption_items(items: list[PatchItem], out_jsonl: str | Path, ccfg,
                  backend: Backend | None = None, alignment_spec=None, backend_cfg=None) -> dict:
    """Caption ``items`` (one slide) into ``out_jsonl``; resume from its partial file.
    ``ccfg``: CaptioningConfig; ``alignment_spec``: the resolved ``EncoderSpec`` of
    ``ccfg.filters.alignment_encoder`` (None: off, or a built-in name)."""
    out = {}

    def report(slide, result):
        out["result"] = result

    slide = items[0].slide_id if items else Path(out_jsonl).name.removesuffix(".jsonl")
    caption_many([(slide, items, out_jsonl)], ccfg, report, backend, alignment_spec,
                 backend_cfg=backend_cfg)
    if isinstance(out["result"], BaseException):
        raise out["result"]
    return out["result"]


def caption_many(slides: list[tuple[str, list[PatchItem], str | Path]], ccfg,
                 report: Callable[[str, object], None], backend: Backend | None = None,
                 alignment_spec=None, progress: Callable[[int], None] | None = None,
                 backend_cfg=None) -> None:
    """Caption several slides through ONE producer/consumer pipeline: the next slide's items
    enter as soon as a slot frees, so the server never drains at a slide boundary. Each slide
    is finished (filters, final files) the moment its last record is written, and
    ``report(slide_id, summary_or_exception)`` is called for it then. A failure that stops
    every item (CaptioningAborted: records cannot be written, credentials, model missing, the
    managed server gone) is reported for each unfinished slide and raised. ``backend_cfg``:
    the section the backend is built from when it differs from ``ccfg`` only in where the
    agents are served (managed servers); ``ccfg`` shapes the records (prompt hash)."""
    settings = agent_settings(ccfg)
    own_backend = backend is None
    backend = backend or make_backend(backend_cfg or ccfg)
    runs: dict[str, SlideRun] = {}
    reported: set[str] = set()
    try:
        for slide, items, out_jsonl in slides:
            runs[slide] = SlideRun(slide, items, out_jsonl, settings, backend)

        def finish(run: SlideRun) -> None:
            try:
                result = run.finish(ccfg, settings, backend, alignment_spec)
            except Exception as exc:  # this slide is quarantined, the others go on
                result = exc
            reported.add(run.slide_id)
            report(run.slide_id, result)

        for run in runs.values():
            if not run.todo:
                finish(run)
        todo = [run for run in runs.values() if run.todo]
        if todo:
            _pipeline(todo, ccfg, settings, backend, finish, progress, own_backend)
    except CaptioningAborted as err:
        for slide in runs:
            if slide not in reported:
                report(slide, err)
        raise
    finally:
        for run in runs.values():
            run.close()


def _pipeline(todo: list[SlideRun], ccfg, settings, backend, finish, progress, own_backend):
    total = sum(len(run.todo) for run in todo)

    # a record's slide is its item's (the selection CSV's slide_id)
    owner = {(it.slide_id, it.key): run for run in todo for it in run.todo}

    def sink(rec: dict) -> None:
        run = owner[(rec["slide_id"], (rec["x"], rec["y"]))]
        run.append(rec)
        if run.complete:
            finish(run)

    def count(rec: dict) -> None:
        if progress is not None:
            progress(1)

    async def go():
        try:
            return await run_items((it for run in todo for it in run.todo), backend, settings,
                                   sink, concurrency=min(ccfg.concurrency, total),
                                   on_record=count)
        finally:
            if own_backend:
                await backend.aclose()
    asyncio.run(go())


def caption_slide(selection_csv: str | Path, patches_dir: str | Path, out_jsonl: str | Path,
                  ccfg, target_mpp: float | None = None, backend: Backend | None = None,
                  alignment_spec=None, backend_cfg=None) -> dict:
    """Read a selection CSV (+ patch images) and caption it; see :func:`caption_items`."""
    items = read_selection(selection_csv, patches_dir, target_mpp)
    return caption_items(items, out_jsonl, ccfg, backend, alignment_spec, backend_cfg)


__all__ = ["caption_slide", "caption_items", "caption_many", "SlideRun", "output_paths", "CaptioningIncomplete",
           "CaptioningAborted", "CaptioningWriteError", "record_key"]
