"""Chunk stage `select`: prompt retrieval + k-means prototypes -> selection CSV + patch images."""

from __future__ import annotations

from ..runner.stage import SLIDE, Stage, register_stage
from ..runner.state import file_identity

PROMPT_EMBEDDINGS_DIR = "prompt_embeddings"  # per-prompt text-embedding cache, beside the CSVs


def files(L) -> dict:
    return {"selection": L.selection(SLIDE), "patches": L.selection_patches(SLIDE),
            "features": L.features(SLIDE),
            "embeddings_cache": L.selection_dir() / PROMPT_EMBEDDINGS_DIR}


def settings(cfg):
    """Every selection setting, the text encoder and the llm report extractor's chat model."""
    from ..instruct.chat import chat_params, chat_settings
    from ..runner.params import encoder_definition
    from .workflow import REPORT_CHAT_USER, uses_report_chat

    return {"selection": cfg.selection.model_dump(mode="json"),
            "text_encoder": encoder_definition(cfg, cfg.selection.text_encoder
                                               or cfg.features.encoder),
            "report_chat": (chat_params(chat_settings(cfg.captioning, REPORT_CHAT_USER))
                            if uses_report_chat(cfg) else None)}


def params(cfg) -> dict:
    """The features encoder (its untrained-weights warning), not fingerprinted."""
    from ..runner.params import encoder_definition

    return {"features_encoder": encoder_definition(cfg, cfg.features.encoder)}


def models(ctx):
    """SelectionModels from the settings and the `features_encoder` param."""
    from ..config.features import EncoderSpec
    from ..config.selection import SelectionConfig
    from ..instruct.chat import chat_from_params
    from .runner import SelectionModels

    s, feats = ctx.settings, ctx.param("features_encoder")
    chat = chat_from_params(s["report_chat"]) if s.get("report_chat") else None
    return (SelectionConfig.model_validate(s["selection"]),
            SelectionModels(s["text_encoder"]["name"],
                            EncoderSpec.model_validate(s["text_encoder"]["spec"]),
                            feats["name"], EncoderSpec.model_validate(feats["spec"]), chat))


def input_key(ctx, slide):
    return [ctx.param("case_id").get(slide), ctx.param("cancer_type")[slide],
            [file_identity(p) for p in ctx.param("files_read", [])]]


def open_models(ctx) -> None:
    ctx.cache["selection"], ctx.cache["models"] = models(ctx)


def run(ctx, slide) -> dict:
    from .runner import run_selection

    res = run_selection(ctx.cache["selection"], ctx.cache["models"], slide,
                        ctx.file("features", slide), ctx.slide_path(slide),
                        ctx.file("selection", slide), ctx.file("patches", slide),
                        case_id=ctx.param("case_id").get(slide) or None,
                        cancer_type=ctx.param("cancer_type")[slide],
                        embeddings_cache=ctx.file("embeddings_cache"))
    return {k: v for k, v in (res or {}).items() if isinstance(v, (int, float, str))}


STAGE = register_stage(Stage("select", run, files, ("selection", "patches"), settings,
                             upstream="features", params=params, input_key=input_key,
                             open=open_models))
