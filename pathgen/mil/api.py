"""Config-driven entry points used by the workflow rules and `pathgen mil --config`.

Paths are pathgen.paths.Layout's: `mil_splits_dir(task)` (`splits_<k>.csv` +
`splits_summary.json`), `mil_run_dir(task, encoder, model)` (see run.py) and `mil_table()`.
`run_task` is the rule's entry point: it takes the task's and evaluation.mil's settings and
the paths, so the job validates no more than its own sections.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..config import ConfigError, PathgenConfig
from ..config.evaluation import MilConfig, MilTaskConfig
from ..paths import Layout
from .tasks import get_task, task_splits, task_table  # noqa: F401 (the API's task functions)
# The Snakefile imports this module at parse time: torch/sklearn stay out of module scope.

log = logging.getLogger(__name__)


def mil_encoders(cfg: PathgenConfig) -> list[str]:
    encs = cfg.evaluation.mil.encoders or [cfg.features.encoder]
    known = cfg.all_encoders()
    for e in encs:
        if e not in known:
            raise ConfigError(f"evaluation.mil.encoders lists '{e}', which is not a defined encoder; "
                              f"known: {', '.join(sorted(known))} (define it under `encoders`)")
    return encs


def task_features_dir(cfg: PathgenConfig, task: str, encoder: str) -> Path:
    """The task's own folder (`{encoder}` is substituted) or pathgen's features folder."""
    t = get_task(cfg, task)
    if t.features_dir is not None:
        return Path(str(t.features_dir).replace("{encoder}", encoder))
    return Layout(cfg).features_dir(encoder)


def n_folds(cfg: PathgenConfig, task: str) -> int:
    """Fold count known before running (given splits are counted on disk)."""
    t = get_task(cfg, task)
    if t.splits is None:
        return t.folds
    from .splits import read_splits

    return len(read_splits(t.splits))


def slide_paths(cfg: PathgenConfig) -> dict[str, Path]:
    from ..slides import list_slides
    try:
        return {k: r.path for k, r in list_slides(cfg).items()}
    except ConfigError as err:
        log.warning("slide list unavailable (%s): heatmaps drawn without thumbnails", err)
        return {}


def task_benchmark(cfg: PathgenConfig, task: str, encoder: str, model: str,
                   device: str | None = None, available: set[str] | None = None) -> dict:
    """`pathgen mil --task`: run_task with the config's settings and Layout's paths."""
    L = Layout(cfg)
    return run_task(task, get_task(cfg, task), cfg.evaluation.mil, encoder=encoder, model=model,
                    splits_dir=L.mil_splits_dir(task), features_dir=task_features_dir(cfg, task, encoder),
                    out_dir=L.mil_run_dir(task, encoder, model), device=device, available=available,
                    slide_paths=slide_paths(cfg))


def run_task(task: str, settings: MilTaskConfig | dict, mil: MilConfig | dict, *, encoder: str,
             model: str, splits_dir: Path, features_dir: Path, out_dir: Path, device: str | None = None,
             available: set[str] | None = None, slide_paths: dict[str, Path] | None = None) -> dict:
    """One task x encoder x model. ``settings``: evaluation.mil.tasks.<task>; ``mil``:
    evaluation.mil (its tasks/encoders/models are not used); dicts are validated here."""
    from .run import run_benchmark
    from .splits import read_splits
    from .train import TrainParams

    t = MilTaskConfig.model_validate(settings) if isinstance(settings, dict) else settings
    mil = MilConfig.model_validate(mil) if isinstance(mil, dict) else mil
    sd = Path(splits_dir)
    if not sd.is_dir():
        raise ConfigError(f"splits of task '{task}' missing in {sd}; run rule mil_splits "
                          f"(or `pathgen mil-splits --task {task}`) first")
    return run_benchmark(task_table(t, available), t.classes, read_splits(sd), Path(features_dir),
                         model, Path(out_dir), TrainParams.from_config(mil, device),
                         task=task, encoder=encoder, max_memory_mb=mil.max_memory_mb,
                         heatmap_slides=mil.heatmap_slides, slide_paths=slide_paths or {})


def all_metrics_files(cfg: PathgenConfig) -> list[Path]:
    L = Layout(cfg)
    return [L.mil_metrics(task, enc, m)["metrics"] for task in cfg.evaluation.mil.tasks
            for enc in mil_encoders(cfg) for m in cfg.evaluation.mil.models]


def mil_table(metrics_files: list[Path], out_csv: Path, out_md: Path):
    from .results_table import write_table

    return write_table([Path(p) for p in metrics_files], Path(out_csv), Path(out_md))


# -- Snakemake input functions (kept here so the rules file holds only rules) --------------
def slide_files(cfg: PathgenConfig, slides: dict) -> dict[str, str]:
    """Rule mil's `slides` param: slide files for the heatmap thumbnails ({} when none are drawn)."""
    return {s: str(r.path) for s, r in slides.items()} if cfg.evaluation.mil.heatmap_slides else {}


def task_inputs(cfg: PathgenConfig, task: str) -> dict[str, str]:
    t = get_task(cfg, task)
    out = {"labels": str(t.labels)}
    if t.slide_table is not None:
        out["slide_table"] = str(t.slide_table)
    if t.splits is not None:
        out["splits"] = str(t.splits)
    return out
