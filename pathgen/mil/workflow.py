"""Config -> job arguments of the MIL rules and `pathgen mil --task` (glue: takes the whole config).

The rules' parse-time helpers (encoders, inputs, params, metrics files) and the CLI's
config-driven runs; the jobs themselves (pathgen.mil.api) take sections and paths.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..config import ConfigError, PathgenConfig
from ..paths import Layout
from ..cohort import list_slides
from .api import get_task, run_task, task_splits

log = logging.getLogger("pathgen.mil.api")


def mil_encoders(cfg: PathgenConfig) -> list[str]:
    encs = cfg.evaluation.mil.encoders or [cfg.features.encoder]
    known = cfg.all_encoders()
    for e in encs:
        if e not in known:
            raise ConfigError(f"evaluation.mil.encoders lists '{e}', which is not a defined encoder; "
                              f"known: {', '.join(sorted(known))} (define it under `encoders`)")
    return encs


def registered_feature_encoders(cfg: PathgenConfig) -> list[str]:
    """MIL encoders whose features this workflow extracts itself (rule
    extract_encoder_features): every one of evaluation.mil.encoders that is neither
    features.encoder (rule extract_features) nor a CLIP this workflow trains (rule
    extract_model_features), e.g. a built-in UNI or Virchow2. Empty without MIL tasks."""
    from ..training.workflow import trained_models

    mil = cfg.evaluation.mil
    if not mil.enabled or not mil.tasks:
        return []
    trained = trained_models(cfg)
    return [e for e in mil_encoders(cfg) if e != cfg.features.encoder and e not in trained]


def encoder_feature_params(cfg: PathgenConfig, encoder: str) -> dict:
    """Rule extract_encoder_features' settings/files/upstream/on_slide_error for ``encoder``:
    the `features` chunk stage of a run whose features.encoder is ``encoder`` (its own
    features_<encoder>/ folder, state records and chunk outcomes; its definition and the
    features settings are the rerun trigger)."""
    from ..runner.params import chunk_job_params

    run_cfg = cfg.model_copy(update={"features": cfg.features.model_copy(update={"encoder": encoder})})
    return chunk_job_params("features", run_cfg, Layout(run_cfg))


def task_features_dir(cfg: PathgenConfig, task: str, encoder: str) -> Path:
    """The task's own folder (`{encoder}` is substituted) or pathgen's features folder."""
    t = get_task(cfg.evaluation.mil, task)
    if t.features_dir is not None:
        return Path(str(t.features_dir).replace("{encoder}", encoder))
    return Layout(cfg).features_dir(encoder)


def slide_paths(cfg: PathgenConfig) -> dict[str, Path]:
    try:
        return {k: r.path for k, r in list_slides(cfg).items()}
    except ConfigError as err:
        log.warning("slide list unavailable (%s): heatmaps drawn without thumbnails", err)
        return {}


def config_task_splits(cfg: PathgenConfig, task: str, available: set[str] | None = None) -> list[Path]:
    """`pathgen mil-splits --task`: task_splits with the config's task, seed and Layout's folder."""
    return task_splits(get_task(cfg.evaluation.mil, task), Layout(cfg).mil_splits_dir(task),
                       cfg.evaluation.mil.seed, available)


def task_benchmark(cfg: PathgenConfig, task: str, encoder: str, model: str,
                   device: str | None = None, available: set[str] | None = None) -> dict:
    """`pathgen mil --task`: run_task with the config's settings and Layout's paths."""
    L = Layout(cfg)
    return run_task(task, get_task(cfg.evaluation.mil, task), cfg.evaluation.mil, encoder=encoder,
                    model=model, splits_dir=L.mil_splits_dir(task),
                    features_dir=task_features_dir(cfg, task, encoder), out_dir=L.mil_run_dir(task, encoder, model),
                    device=device, available=available, slide_paths=slide_paths(cfg))


def all_metrics_files(cfg: PathgenConfig) -> list[Path]:
    L = Layout(cfg)
    return [L.mil_metrics(task, enc, m)["metrics"] for task in cfg.evaluation.mil.tasks
            for enc in mil_encoders(cfg) for m in cfg.evaluation.mil.models]


# -- Snakemake input/params functions (kept here so the rules file holds only rules) --------
def task_settings(cfg: PathgenConfig, task: str) -> dict:
    """Rule param `task`: the task's full definition (presets filled in), its rerun trigger."""
    return get_task(cfg.evaluation.mil, task).model_dump(mode="json")


def slide_files(cfg: PathgenConfig, slides: dict) -> dict[str, str]:
    """Rule mil's `slides` param: slide files for the heatmap thumbnails ({} when none are drawn)."""
    return {s: str(r.path) for s, r in slides.items()} if cfg.evaluation.mil.heatmap_slides else {}


def task_inputs(cfg: PathgenConfig, task: str) -> dict[str, str]:
    t = get_task(cfg.evaluation.mil, task)
    out = {"labels": str(t.labels)}
    if t.slide_table is not None:
        out["slide_table"] = str(t.slide_table)
    if t.splits is not None:
        out["splits"] = str(t.splits)
    return out
