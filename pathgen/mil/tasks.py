"""A MIL task's labels table and splits (light: pandas + sklearn, no torch), so the
`mil_splits` rule runs in the light report env. Re-exported by pathgen.mil.api."""

from __future__ import annotations

import logging
from pathlib import Path

from ..config import ConfigError, PathgenConfig
from ..config.evaluation import MilTaskConfig
from ..paths import Layout

log = logging.getLogger("pathgen.mil.api")


def get_task(cfg: PathgenConfig, task: str) -> MilTaskConfig:
    try:
        return cfg.evaluation.mil.tasks[task]
    except KeyError:
        raise ConfigError(f"no MIL task '{task}' in evaluation.mil.tasks; defined: "
                          f"{', '.join(cfg.evaluation.mil.tasks) or 'none'}") from None


def task_table(t: MilTaskConfig, available: set[str] | None = None):
    """The task's labels table; with ``available`` (slides whose features finished), only
    those slides: quarantined slides are left out of splits and training, with a warning."""
    from .labels import read_labels

    table = read_labels(t.labels, t.classes, target=t.target, slide_table=t.slide_table,
                        label_map=t.label_map)
    if available is not None:
        missing = sorted(set(table["slide_id"]) - set(available))
        if missing:
            log.warning("%d labelled slide(s) have no finished features and are left out "
                        "(see `pathgen status`): %s", len(missing), ", ".join(missing[:10]))
        table = table[table["slide_id"].isin(set(available))].reset_index(drop=True)
    return table


def task_splits(cfg: PathgenConfig, task: str, available: set[str] | None = None) -> list[Path]:
    from .splits import make_splits

    t = get_task(cfg, task)
    table = task_table(t, available)
    return make_splits(table, t.classes, Layout(cfg).mil_splits_dir(task), given=t.splits, folds=t.folds,
                       val_fraction=t.val_fraction, seed=cfg.evaluation.mil.seed)


