"""Selection stage: prompt retrieval + k-means prototypes -> selection CSV + patch images."""

from __future__ import annotations

from ..slide_state import file_identity


def outputs(L, slide):
    return [L.selection(slide), L.selection_patches(slide)]


def input_key(ctx, slide):
    return [ctx.extra["case_id"].get(slide), [file_identity(p) for p in ctx.extra.get("files", [])]]


def run(ctx, slide) -> dict:
    from ..selection.runner import run_selection

    L = ctx.layout
    res = run_selection(ctx.cfg, slide, L.features(slide), ctx.slide_path(slide), L.selection(slide),
                        L.selection_patches(slide), case_id=ctx.extra["case_id"].get(slide) or None,
                        embeddings_cache=L.selection_dir() / "prompt_embeddings")
    return {k: v for k, v in (res or {}).items() if isinstance(v, (int, float, str))}
