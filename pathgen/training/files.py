"""File names of CLIP training (``<results>/training/``, a baseline's
``training/baselines/<baseline>/``) and of open_clip's own run folders.

No config import.
"""

from __future__ import annotations

from pathlib import Path

TRAINING_DIR = "training"             # <results>/training/
BASELINES_DIR = "baselines"           # training/baselines/<baseline>/: comparison CLIPs (same schedule)
TRAINING_DATA_DIR = "data"            # a baseline's generated training pairs
FINAL_PT = "final.pt"
FINAL_JSON = "final.json"
LOSS_PNG = "loss.png"
LOSS_CSV = "loss.csv"
TRAIN_CSV = "train.csv"               # a training stage's merged pairs (several sources)
OPEN_CLIP_OUT_LOG = "out.log"         # open_clip_train's log in <logs>/<name>/
STAGE_JSON = "stage.json"             # per training stage: fingerprint + argv of its last start
WARM_START_DIR = "warm_start"
PREVIOUS_FINAL_PT = "previous_final.pt"
PREVIOUS_FINAL_JSON = "previous_final.json"


def training_dir(results_dir: str | Path, baseline: str | None = None) -> Path:
    """<results>/training, or training/baselines/<baseline> for a training baseline."""
    main = Path(results_dir) / TRAINING_DIR
    return main / BASELINES_DIR / baseline if baseline else main


def training_files(training_dir: str | Path, name: str) -> dict[str, Path]:
    """A training run's outputs (Layout.training_outputs) in ``training_dir`` (training/ or
    training/baselines/<baseline>/) for run ``name`` (training.name): jobs given the folder."""
    run_dir = Path(training_dir) / name
    return {"final": Path(training_dir) / FINAL_PT, "meta": Path(training_dir) / FINAL_JSON,
            "loss_png": run_dir / LOSS_PNG, "loss_csv": run_dir / LOSS_CSV}


def warm_start_files(training_dir: str | Path, name: str) -> dict[str, Path]:
    """Layout.warm_start_files of run ``name`` in ``training_dir``."""
    warm = Path(training_dir) / name / WARM_START_DIR
    return {"checkpoint": warm / PREVIOUS_FINAL_PT, "meta": warm / PREVIOUS_FINAL_JSON}


def stage_record(stage_dir: str | Path) -> Path:
    """stage.json of a training stage folder (fingerprint and argv of its last start)."""
    return Path(stage_dir) / STAGE_JSON


def training_merged_csv(stage_data_dir: str | Path) -> Path:
    return Path(stage_data_dir) / TRAIN_CSV


def open_clip_checkpoint(checkpoints_dir: str | Path, epoch: int) -> Path:
    """open_clip_train's checkpoint naming: <logs>/<name>/checkpoints/epoch_<N>.pt."""
    return Path(checkpoints_dir) / f"epoch_{epoch}.pt"


def open_clip_out_log(run_dir: str | Path) -> Path:
    return Path(run_dir) / OPEN_CLIP_OUT_LOG
