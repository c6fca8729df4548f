"""Caption stage: describe -> revise -> summarize agents over a slide's selected patches."""

from __future__ import annotations


def outputs(L, slide):
    from ..captioning.stage import output_paths

    paths = output_paths(L.captions(slide))
    return [paths["captions"], paths["rejects"], paths["summary"]]


def needs_redo(record) -> bool:
    """A finished slide with failed caption items is redone (only those items are retried)."""
    return bool(record.get("info", {}).get("n_failed"))


def after_chunk(ctx, chunk, members) -> None:
    from ..chunk_run import bump_caption_retry

    bump_caption_retry(ctx.layout.chunk_retry("caption", chunk), members, ctx.layout)


def input_key(ctx, slide):
    return None  # the selection is in the upstream fingerprint


def alignment_spec(cfg):
    """The caption filters' reference CLIP, resolved (None when the alignment filter is off)."""
    name = cfg.captioning.filters.alignment_encoder
    return cfg.encoder_spec(name) if name else None


def run(ctx, slide) -> dict:
    from ..captioning.stage import caption_slide

    cfg, L = ctx.cfg, ctx.layout
    res = caption_slide(L.selection(slide), L.selection_patches_root(), L.captions(slide),
                        cfg.captioning, target_mpp=cfg.tiling.geometry()[1],
                        alignment_spec=alignment_spec(cfg))
    return {k: res[k] for k in ("n_selected", "n_ok", "n_failed", "n_accepted", "n_rejected")}
