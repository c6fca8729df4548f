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

log = logging.getLogger("pathgen.chunk")
# Caption items that failed (below max_failed_fraction) are retried on this many later runs.
MAX_ITEM_RETRY_RUNS = 3


def files(L) -> dict:
    finals = {k: v for k, v in L.caption_files(L.captions(SLIDE)).items() if k != "partial"}
    return {**finals, "selection": L.selection(SLIDE),
            "patches_root": L.selection_patches_root(),
            "retry": L.chunk_retry("caption", CHUNK)}


def settings(cfg):
    """Every caption-shaping setting and the filters (a change re-runs the job; the kept
    <slide>.partial.jsonl makes a filter-only change a cheap re-filter) and the filters'
    image-text encoder, by definition (not only its name)."""
    from ..runner.params import encoder_definition

    return {"captioning": cfg.captioning.model_dump(mode="json"),
            "alignment_encoder": encoder_definition(cfg, cfg.captioning.filters.alignment_encoder)}


def alignment_spec(cfg):
    """The caption filters' reference CLIP, resolved (None when the alignment filter is off)."""
    name = cfg.captioning.filters.alignment_encoder
    return cfg.encoder_spec(name) if name else None


def needs_redo(record) -> bool:
    """A finished slide with failed caption items is redone (only those items are retried)."""
    return bool(record.get("info", {}).get("n_failed"))


def sections(ctx):
    """(captioning section, alignment encoder spec or None) from the settings param."""
    from ..config.captioning import CaptioningConfig
    from ..config.features import EncoderSpec

    s = ctx.settings
    align = s.get("alignment_encoder")
    return (CaptioningConfig.model_validate(s["captioning"]),
            EncoderSpec.model_validate(align["spec"]) if align else None)


def open_captioning(ctx) -> None:
    ctx.cache["captioning"], ctx.cache["alignment"] = sections(ctx)


def run(ctx, slide) -> dict:
    from .stage import caption_slide

    res = caption_slide(ctx.file("selection", slide), ctx.file("patches_root"),
                        ctx.file("captions", slide), ctx.cache["captioning"],
                        target_mpp=ctx.param("target_mpp", None),
                        alignment_spec=ctx.cache["alignment"])
    return {k: res[k] for k in ("n_selected", "n_ok", "n_failed", "n_accepted", "n_rejected")}


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
                             upstream="select",
                             needs_redo=needs_redo, open=open_captioning, after_chunk=bump_retry))
