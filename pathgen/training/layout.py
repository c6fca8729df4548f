"""Training output paths: config-only, imported by the Snakefile at parse time."""

from __future__ import annotations

from pathlib import Path


def training_outputs(training_dir: Path, name: str) -> dict[str, Path]:
    return {"final": training_dir / "final.pt", "meta": training_dir / "final.json",
            "loss_png": training_dir / name / "loss.png", "loss_csv": training_dir / name / "loss.csv"}
