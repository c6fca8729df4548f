"""Config -> arguments of rule build_report and `pathgen report` (glue: takes the whole config)."""

from __future__ import annotations

from ..config import PathgenConfig
from ..paths import Layout

# How jobs are run, not what they write: not shown, and editing them reruns no report.
EXECUTION_ONLY = {"cluster", "resources"}
STAGE_DIRS = ("dataset_dir", "training_dir", "zeroshot_dir", "mil_dir", "instruct_dir")


def _strings(value) -> set[str]:
    if isinstance(value, str):
        return {value}
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return set().union(*map(_strings, items)) if items else set()


def shown_config(cfg: PathgenConfig) -> dict:
    """The settings the page shows ("Configuration used") and reads (overview, baselines): every
    section that shapes a result; of `encoders`, the definitions some setting names (a spare
    definition shapes nothing, so adding one reruns no report)."""
    d = cfg.model_dump(mode="json", exclude=EXECUTION_ONLY)
    named = _strings({k: v for k, v in d.items() if k != "encoders"})
    d["encoders"] = {name: spec for name, spec in d["encoders"].items() if name in named}
    return d


def report_params(cfg: PathgenConfig, slide_ids: list[str]) -> dict:
    """Rule build_report's params (its rerun trigger): the shown config, the slides, each slide's
    tiling QC image, the stages' output folders and the report's figure folder."""
    L = Layout(cfg)
    return {"config": shown_config(cfg), "slides": list(slide_ids),
            "qc_images": {s: str(L.tiling_qc(s)) for s in slide_ids},
            "dirs": {k: str(getattr(L, k)) for k in STAGE_DIRS},
            "figures_dir": str(L.report_figures_dir)}
