"""A MIL task's labels table and splits (light: pandas + sklearn, no torch), so the
`mil_splits` rule runs in the light report env. Re-exported by pathgen.mil.api."""

from __future__ import annotations

import logging
from pathlib import Path

from ..config import ConfigError
from ..config.evaluation import MilConfig, MilTaskConfig

log = logging.getLogger("pathgen.mil.api")


def get_task(mil: MilConfig, task: str) -> MilTaskConfig:
    """Task `task` of the evaluation.mil section."""
    try:
        return mil.tasks[task]
    except KeyError:
        raise ConfigError(f"no MIL task '{task}' in evaluation.mil.tasks; defined: "
                          f"{', '.join(mil.tasks) or 'none'}") from None


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


def task_splits(t: MilTaskConfig, out_dir: Path, seed: int, available: set[str] | None = None) -> list[Path]:
    """The splits of task ``t`` (evaluation.mil.tasks.<task>) in ``out_dir`` (Layout.mil_splits_dir);
    ``seed``: evaluation.mil.seed; ``available`` as in :func:`task_table`."""
    from .splits import make_splits

    return make_splits(task_table(t, available), t.classes, Path(out_dir), given=t.splits, folds=t.folds,
                       val_fraction=t.val_fraction, seed=seed)


