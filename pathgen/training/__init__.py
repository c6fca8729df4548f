"""CLIP training: configured stages run by open_clip's own trainer (open_clip_train.main)."""

from .argv import build_argv, stage_paths
from .data import StageData, resolve_stage_data
from .run import TrainResult, export_final, train

__all__ = ["build_argv", "stage_paths", "StageData", "resolve_stage_data", "TrainResult",
           "export_final", "train"]
