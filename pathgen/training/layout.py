"""Training output paths: config-only, imported by the Snakefile at parse time."""

from __future__ import annotations

from pathlib import Path


def training_outputs(training_dir: Path, name: str) -> dict[str, Path]:
    return {"final": training_dir / "final.pt", "meta": training_dir / "final.json",
            "loss_png": training_dir / name / "loss.png", "loss_csv": training_dir / name / "loss.csv"}


def warm_start_files(training_dir: Path, name: str) -> dict[str, Path]:
    """The previous run's final weights kept for `training.warm_start`. Not a rule output on
    purpose: Snakemake deletes a rule's outputs (final.pt) before rerunning it."""
    folder = Path(training_dir) / name / "warm_start"
    return {"checkpoint": folder / "previous_final.pt", "meta": folder / "previous_final.json"}
