"""Config -> arguments of rule build_report and `pathgen report`, and the page's inputs from
the run's files (glue: takes the whole config and reads the chunk runner's outcome files)."""

from __future__ import annotations

from pathlib import Path

from ..config import PathgenConfig
from ..paths import Layout
from ..runner.state import failed_members
from ..tiling.files import qc_files
from .build import ReportInputs

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
            # = str(L.tiling_qc(s)) per slide, the folder derived once (30k slides: 0.5 s -> 5 ms)
            "qc_images": qc_files(L.tiles_dir(), slide_ids),
            "dirs": {k: str(getattr(L, k)) for k in STAGE_DIRS},
            "figures_dir": str(L.report_figures_dir)}


def report_inputs(config: dict, slide_ids: list[str], dirs: dict[str, str | Path],
                  qc_images: dict[str, str | Path], chunk_files: list, n_qc: int = 3) -> ReportInputs:
    """The page's inputs: ``config`` (the settings shown), the run's slides, the stages' folders
    (``dirs``: dataset_dir, training_dir, ...), each slide's tiling QC image (the first ``n_qc``
    finished slides' are shown) and the per-slide stages' chunk outcome files (their failed and
    blocked members are listed)."""
    problems = [p for p in failed_members(chunk_files) if p["slide_id"] in set(slide_ids)]
    failed = {p["slide_id"] for p in problems}
    qc = [Path(qc_images[s]) for s in slide_ids if s not in failed and s in qc_images][:n_qc]
    return ReportInputs(config=config, qc_images=[p for p in qc if p.exists()], slide_problems=problems,
                        n_slides=len(slide_ids), **{k: Path(v) for k, v in dirs.items()})
