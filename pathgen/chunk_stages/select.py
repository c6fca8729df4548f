"""Selection stage: prompt retrieval + k-means prototypes -> selection CSV + patch images."""

from __future__ import annotations

from ..slide_state import file_identity


def outputs(L, slide):
    return [L.selection(slide), L.selection_patches(slide)]


def _cancer_type(ctx, slide) -> str:
    """The rule's per-slide param (parse time); resolved here when run without one."""
    types = ctx.extra.get("cancer_type")
    if types is None or slide not in types:
        from ..selection.workflow import cancer_types

        return cancer_types(ctx.cfg, [slide])[slide]
    return types[slide]


def input_key(ctx, slide):
    return [ctx.extra["case_id"].get(slide), _cancer_type(ctx, slide),
            [file_identity(p) for p in ctx.extra.get("files", [])]]


def run(ctx, slide) -> dict:
    from ..selection.runner import run_selection
    from ..selection.workflow import selection_models

    if "models" not in ctx.cache:  # resolved once per chunk job
        ctx.cache["models"] = selection_models(ctx.cfg)
    L = ctx.layout
    res = run_selection(ctx.cfg.selection, ctx.cache["models"], slide, L.features(slide),
                        ctx.slide_path(slide), L.selection(slide), L.selection_patches(slide),
                        case_id=ctx.extra["case_id"].get(slide) or None,
                        cancer_type=_cancer_type(ctx, slide),
                        embeddings_cache=L.selection_dir() / "prompt_embeddings")
    return {k: v for k, v in (res or {}).items() if isinstance(v, (int, float, str))}
