"""Chunk stage `caption`: describe -> revise -> summarize agents over the selected patches of
every member slide."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ..atomic import write_text
from ..runner.stage import CHUNK, SLIDE, Stage, register_stage
from ..runner.state import read_record
from .files import chunk_progress_file

log = logging.getLogger("pathgen.chunk")
# Caption items that failed (below max_failed_fraction) are retried on this many later runs.
MAX_ITEM_RETRY_RUNS = 3


def files(L) -> dict:
    finals = {k: v for k, v in L.caption_files(L.captions(SLIDE)).items() if k != "partial"}
    return {**finals, "selection": L.selection(SLIDE),
            "patches_root": L.selection_patches_root(),
            "retry": L.chunk_retry("caption", CHUNK),
            "progress": chunk_progress_file(L.chunk_done("caption", CHUNK))}


def settings(cfg):
    """Every caption-shaping setting and the filters (a change re-runs the job; the kept
    <slide>.partial.jsonl makes a filter-only change a cheap re-filter) and the filters'
    image-text encoder, by definition (not only its name). How the agents are served
    (serve, server) is the `serving` param: it changes no caption."""
    from ..runner.params import encoder_definition

    return {"captioning": cfg.captioning.model_dump(mode="json", exclude=SERVING_KEYS),
            "alignment_encoder": encoder_definition(cfg, cfg.captioning.filters.alignment_encoder)}


def params(cfg) -> dict:
    """The job's other params: how the agents are served (captioning.serve and .server) and
    the patches' µm/px."""
    return {"serving": cfg.captioning.model_dump(mode="json", include=SERVING_KEYS),
            "target_mpp": cfg.tiling.geometry()[1]}


SERVING_KEYS = {"serve", "server"}


def alignment_spec(cfg):
    """The caption filters' reference CLIP, resolved (None when the alignment filter is off)."""
    name = cfg.captioning.filters.alignment_encoder
    return cfg.encoder_spec(name) if name else None


def needs_redo(record) -> bool:
    """A finished slide with failed caption items is redone (only those items are retried)."""
    return bool(record.get("info", {}).get("n_failed"))


def sections(ctx):
    """(captioning section, alignment encoder spec or None) from the settings and serving params."""
    from ..config.captioning import CaptioningConfig
    from ..config.features import EncoderSpec

    s = ctx.settings
    align = s.get("alignment_encoder")
    return (CaptioningConfig.model_validate({**s["captioning"], **ctx.param("serving", {})}),
            EncoderSpec.model_validate(align["spec"]) if align else None)


def device(ctx) -> str | None:
    """The GPU the job uses: its managed server's, or the transformers agents' device."""
    ccfg, _ = sections(ctx)
    if ccfg.serve == "managed":
        return "cuda"
    devices = [ccfg.agent(r).cfg.device for r in ("describe", "revise", "summarize")
               if ccfg.agent(r).backend == "transformers"]
    return devices[0] if devices else None


def open_captioning(ctx) -> None:
    """The sections, then (serve: managed) the job's own model server(s), healthy."""
    from ..runner import InfrastructureError
    from .serving import ServerPool, ServerStartError

    ccfg, align = sections(ctx)
    ctx.cache.update(captioning=ccfg, alignment=align, backend_cfg=None, servers=None)
    if ccfg.serve == "managed":
        log_dir = Path(ctx.log_path).with_suffix("") if ctx.log_path else ctx.file("retry").parent
        pool = ServerPool(ccfg, log_dir)
        try:
            ctx.cache["backend_cfg"] = pool.start()
        except ServerStartError as err:
            raise InfrastructureError(str(err)) from err
        ctx.cache["servers"] = pool


def close_captioning(ctx) -> None:
    pool = ctx.cache.pop("servers", None)
    if pool is not None:
        pool.stop()


def run(ctx, slide) -> dict:
    """One slide on its own (the CLI's path; the chunk job uses :func:`run_many`)."""
    out = {}
    run_many(ctx, [slide], lambda s, result: out.update(result=result))
    if isinstance(out["result"], BaseException):
        raise out["result"]
    return out["result"]


SUMMARY_KEYS = ("n_selected", "n_ok", "n_failed", "n_accepted", "n_rejected")


def run_many(ctx, slides, report) -> None:
    """Every member slide through one pipeline (captioning.stage.caption_many); each slide's
    record is written the moment its last item is."""
    from ..runner import InfrastructureError
    from ..runner.progress import ChunkProgress
    from .items import CaptioningAborted, read_selection
    from .serving import ServerGone
    from .stage import caption_many

    jobs = []
    for slide in slides:
        try:
            items = read_selection(ctx.file("selection", slide), ctx.file("patches_root"),
                                   ctx.param("target_mpp", None))
        except Exception as exc:  # this slide is quarantined, the others go on
            report(slide, exc)
            continue
        jobs.append((slide, items, ctx.file("captions", slide)))
    progress = ChunkProgress(ctx.file("progress"), "caption", ctx.chunk,
                             sum(len(items) for _, items, _ in jobs),
                             ctx.param("progress_interval_s", 30.0))

    def done(slide, result):
        report(slide, result if isinstance(result, BaseException)
               else {k: result[k] for k in SUMMARY_KEYS})

    try:
        caption_many(jobs, ctx.cache["captioning"], done, alignment_spec=ctx.cache["alignment"],
                     progress=progress.add, backend_cfg=ctx.cache.get("backend_cfg"))
    except ServerGone as err:
        raise InfrastructureError(str(err)) from err
    except CaptioningAborted:
        pass  # reported for every unfinished slide (quarantined, with the error and its fix)
    finally:
        progress.finish()


# -- item retries across runs ---------------------------------------------------------------------
def read_retry(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {"generation": 0, "runs": 0}


def retry_generation(path: Path) -> int:
    """The rule param that re-triggers a caption chunk whose items failed (parse time)."""
    if not os.path.exists(path):
        return 0
    return int(read_retry(path).get("generation", 0))


def bump_retry(ctx) -> None:
    """Caption items that failed make the next run retry them: the rule's `retry` param is
    this file's generation, so bumping it re-triggers the chunk job exactly once per run, up
    to MAX_ITEM_RETRY_RUNS runs in a row."""
    path = ctx.file("retry")
    failed_items = sum((read_record(ctx.state_file("caption", s)) or {}).get("info", {})
                       .get("n_failed", 0) or 0 for s in ctx.members)
    state = read_retry(path)
    if failed_items and state["runs"] < MAX_ITEM_RETRY_RUNS:
        state = {"generation": state["generation"] + 1, "runs": state["runs"] + 1,
                 "failed_items": failed_items}
        log.warning("%d caption items failed; they are retried on the next run (%d of %d)",
                    failed_items, state["runs"], MAX_ITEM_RETRY_RUNS)
        write_text(path, json.dumps(state) + "\n")
    elif not failed_items and state["runs"]:
        write_text(path, json.dumps({"generation": state["generation"], "runs": 0}) + "\n")


STAGE = register_stage(Stage("caption", run, files, ("captions", "rejects", "summary"), settings,
                             upstream="select", params=params, needs_redo=needs_redo,
                             open=open_captioning,
                             close=close_captioning, run_many=run_many, after_chunk=bump_retry,
                             device=device))
