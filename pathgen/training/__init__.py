"""CLIP training: configured stages run by open_clip's own trainer (open_clip_train.main)."""


__all__ = ["build_argv", "stage_paths", "StageData", "resolve_stage_data", "TrainResult",
           "export_final", "train"]

from ..lazy import lazy_exports  # noqa: E402

_EXPORTS = {
    "build_argv": ".argv",
    "stage_paths": ".argv",
    "StageData": ".data",
    "resolve_stage_data": ".data",
    "TrainResult": ".run",
    "export_final": ".run",
    "train": ".run",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
