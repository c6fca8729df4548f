"""Glue between the config and selection: the models a selection job uses, resolved once from
the whole config (chunk stage, `pathgen select`, the rule's params), so the library below
takes its section and these values only."""

from __future__ import annotations

from ..config import PathgenConfig

REPORT_CHAT_USER = "selection.report_extractor 'llm'"


def uses_report_chat(cfg: PathgenConfig) -> bool:
    """Report findings come from the language model (a reports file and the llm extractor)."""
    return cfg.selection.reports is not None and cfg.selection.report_extractor == "llm"


def selection_models(cfg: PathgenConfig):
    """:class:`~pathgen.selection.runner.SelectionModels` of ``cfg``: the text tower
    (selection.text_encoder, default the features encoder), the features encoder and, for the
    llm report extractor, the summarize agent's chat settings."""
    from ..instruct.chat import chat_settings
    from .runner import SelectionModels

    text = cfg.selection.text_encoder or cfg.features.encoder
    chat = chat_settings(cfg.captioning, REPORT_CHAT_USER) if uses_report_chat(cfg) else None
    return SelectionModels(text, cfg.encoder_spec(text), cfg.features.encoder,
                           cfg.encoder_spec(cfg.features.encoder), chat)


def cancer_types(cfg: PathgenConfig, slides: list[str]) -> dict[str, str]:
    """Each slide's cancer type (sample-sheet column, else selection.cancer_type): a rule
    param, so a changed type re-runs that slide's selection. The same values as
    :func:`~pathgen.selection.runner.slide_cancer_type` per slide, the sheet looked up once
    (per slide it stats and resolves the sheet's path: 30k slides, seconds at parse time)."""
    from .prompts import sheet_cancer_types

    sel = cfg.selection
    types = sheet_cancer_types(cfg.slides.sample_sheet, sel.cancer_type_column)
    return {s: types.get(s, sel.cancer_type) for s in slides}
