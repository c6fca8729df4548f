"""Helpers for rules/zeroshot.smk (kept here so the rules file holds only rules)."""

from __future__ import annotations

import re
from pathlib import Path

from ..config import PathgenConfig
from ..paths import Layout
from .layout import model_spec


def alternatives(names: list[str]) -> str:
    """Wildcard regex matching exactly these names (never-matching when empty)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


def _generated(cfg: PathgenConfig, path: str | Path) -> bool:
    """True for paths the workflow itself produces (under results_dir or the demo folder)."""
    return any(Path(path).is_relative_to(d) for d in (cfg.results_dir, cfg.demo.out_dir))


def zeroshot_inputs(cfg: PathgenConfig, benchmark: str, model: str) -> dict[str, list[str]]:
    """Benchmark data (a generated one: its classes.json) + locally produced model weights."""
    root = cfg.evaluation.zeroshot.benchmarks[benchmark].root
    data = [str(Layout.benchmark_classes(root))] if _generated(cfg, root) else [str(root)]
    pretrained = model_spec(cfg, model).pretrained
    weights = [pretrained] if pretrained and _generated(cfg, pretrained) else []
    return {"data": data, "weights": weights}
