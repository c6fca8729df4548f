"""Entry points of the MIL jobs: settings sections and paths in, never the whole config.

`run_task` (rule mil, `pathgen mil --task`) takes the task's and evaluation.mil's settings and
the folders; `task_splits` (rule mil_splits) the task, its splits folder and the seed. What
turns the config into those arguments (Layout's paths, encoders, the slide list) is the glue
in pathgen.mil.workflow.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..config import ConfigError
from ..config.evaluation import MilConfig, MilTaskConfig
from .tasks import get_task, task_splits, task_table  # noqa: F401 (the API's task functions)
# The Snakefile imports this module at parse time: torch/sklearn stay out of module scope.

log = logging.getLogger(__name__)


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


def mil_table(metrics_files: list[Path], out_csv: Path, out_md: Path):
    from .results_table import write_table

    return write_table([Path(p) for p in metrics_files], Path(out_csv), Path(out_md))
