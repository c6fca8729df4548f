"""Helpers for rules/zeroshot.smk (kept here so the rules file holds only rules)."""

from __future__ import annotations

import re
from pathlib import Path

from ..config import PathgenConfig
from ..paths import Layout
from .layout import model_names, model_spec


def alternatives(names: list[str]) -> str:
    """Wildcard regex matching exactly these names (never-matching when empty)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


def _generated(cfg: PathgenConfig, path: str | Path) -> bool:
    """True for paths the workflow itself produces (under results_dir or the demo folder)."""
    return any(Path(path).is_relative_to(d) for d in (cfg.results_dir, cfg.demo.out_dir))


def zeroshot_inputs(cfg: PathgenConfig, benchmark: str, model: str) -> dict[str, list[str]]:
    """Benchmark data (a generated one: its classes.json) + locally produced model weights."""
    return {"data": _data_inputs(cfg, benchmark), "weights": _weights_inputs(cfg, model)}


def _data_inputs(cfg: PathgenConfig, benchmark: str) -> list[str]:
    root = cfg.evaluation.zeroshot.benchmarks[benchmark].root
    return [str(Layout.benchmark_classes(root))] if _generated(cfg, root) else [str(root)]


def _weights_inputs(cfg: PathgenConfig, model: str) -> list[str]:
    pretrained = model_spec(cfg, model).pretrained
    return [pretrained] if pretrained and _generated(cfg, pretrained) else []


def export_inputs(cfg: PathgenConfig, benchmark: str) -> dict[str, list[str]]:
    """rule zeroshot_export: the benchmark's data + every locally produced model's weights."""
    weights = sorted({w for m in model_names(cfg) for w in _weights_inputs(cfg, m)})
    return {"data": _data_inputs(cfg, benchmark), "weights": weights}


def zeroshot_params(cfg: PathgenConfig, benchmark: str, model: str) -> dict:
    """Everything that shapes one benchmark x model result (rule zeroshot's rerun trigger): the
    benchmark's and the model's definitions, prompting, logit scale, bootstrap and seed."""
    zs = cfg.evaluation.zeroshot
    return {"benchmark": zs.benchmarks[benchmark].model_dump(mode="json"),
            "model": model_spec(cfg, model).model_dump(mode="json"),
            "prompting": list(zs.prompting), "logit_scale": zs.logit_scale,
            "bootstrap": zs.bootstrap, "seed": zs.seed}


def export_params(cfg: PathgenConfig, benchmark: str) -> dict:
    """Everything that shapes the export (its rerun trigger): the benchmark's definition, the
    models' definitions, prompting and the subsampling seed."""
    zs = cfg.evaluation.zeroshot
    return {"benchmark": zs.benchmarks[benchmark].model_dump(mode="json"),
            "models": {m: model_spec(cfg, m).model_dump(mode="json") for m in model_names(cfg)},
            "prompting": list(zs.prompting), "seed": zs.seed}
