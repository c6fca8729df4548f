"""Config -> job arguments of the zero-shot rules and `pathgen zeroshot*` (glue: takes the whole
config, imported by the Snakefile at parse time, so no torch here).

The jobs (pathgen.zeroshot.run.evaluate, pathgen.zeroshot.export.export_benchmark) take a
resolved benchmark, the evaluation.zeroshot section, model specs and folders."""

from __future__ import annotations

import re
from pathlib import Path

from ..config import ConfigError, PathgenConfig
from ..config.features import EncoderSpec
from ..paths import Layout
from .benchmarks import Benchmark, resolve_benchmark
from .files import benchmark_classes


def alternatives(names: list[str]) -> str:
    """Wildcard regex matching exactly these names (never-matching when empty)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


# -- models ---------------------------------------------------------------------------------
def model_names(cfg: PathgenConfig) -> list[str]:
    """evaluation.zeroshot.models, else the trained CLIP (when training) and the features
    encoder (left out when it is vision-only: it has no text tower to classify with)."""
    zs = cfg.evaluation.zeroshot
    if zs.models:
        return list(zs.models)
    names = [cfg.training.register_as] if cfg.training.enabled else []
    known = cfg.all_encoders()
    features = cfg.features.encoder
    if features in known and not known[features].has_text:
        return names
    return names + [n for n in [features] if n not in names]


def trained_spec(cfg: PathgenConfig) -> EncoderSpec:
    """The encoder the training stage produces (results/training/final.pt)."""
    tc = cfg.training
    return EncoderSpec(kind="open_clip", arch=tc.arch,
                       pretrained=str(Layout(cfg).training_final),
                       force_quick_gelu=tc.force_quick_gelu, image_size=tc.image_size)


def model_spec(cfg: PathgenConfig, name: str) -> EncoderSpec:
    known = cfg.all_encoders()
    if name in known:
        return known[name]
    if name == cfg.training.register_as:
        return trained_spec(cfg)
    return cfg.encoder_spec(name)  # raises with the list of known names


def _spec_or_none(cfg: PathgenConfig, model: str) -> EncoderSpec | None:
    """The model's spec; None for an encoder passed in by a caller under a name no config knows."""
    try:
        return model_spec(cfg, model)
    except ConfigError:
        return None


# -- the CLI's config-driven runs ----------------------------------------------------------
def declared_benchmark(cfg: PathgenConfig, benchmark: str) -> Benchmark:
    """evaluation.zeroshot.benchmarks.<benchmark>, resolved (preset/layout, classes, prompts)."""
    zs = cfg.evaluation.zeroshot
    if benchmark not in zs.benchmarks:
        raise KeyError(f"benchmark '{benchmark}' is not declared under evaluation.zeroshot.benchmarks "
                       f"(have: {', '.join(zs.benchmarks) or 'none'})")
    return resolve_benchmark(benchmark, zs.benchmarks[benchmark])


def evaluate_benchmark(cfg: PathgenConfig, benchmark: str, model: str, encoder=None,
                       bm: Benchmark | None = None) -> dict[str, dict]:
    """`pathgen zeroshot`: evaluate() with the config's benchmark, model and Layout's folder."""
    from .run import evaluate

    bm = declared_benchmark(cfg, benchmark) if bm is None else bm
    # Without a caller's encoder the model must be defined: model_spec names the known ones.
    spec = model_spec(cfg, model) if encoder is None else _spec_or_none(cfg, model)
    return evaluate(bm, model, spec, cfg.evaluation.zeroshot, Layout(cfg).zeroshot_run_dir(benchmark, model),
                    encoder)


def config_export(cfg: PathgenConfig, benchmark: str, models: list[str] = (), shard_size: int = 1000) -> dict:
    """`pathgen zeroshot-export`: export_benchmark with the config's benchmark, models and folder."""
    from .export import export_benchmark

    return export_benchmark(declared_benchmark(cfg, benchmark), cfg.evaluation.zeroshot,
                            {m: model_spec(cfg, m) for m in models}, Layout(cfg).clip_benchmark_dir,
                            shard_size)


# -- Snakemake input/params functions (kept here so the rules file holds only rules) --------
def _generated(cfg: PathgenConfig, path: str | Path) -> bool:
    """True for paths the workflow itself produces (under results_dir or the demo folder)."""
    return any(Path(path).is_relative_to(d) for d in (cfg.results_dir, cfg.demo.out_dir))


def zeroshot_inputs(cfg: PathgenConfig, benchmark: str, model: str) -> dict[str, list[str]]:
    """Benchmark data (a generated one: its classes.json) + locally produced model weights."""
    return {"data": _data_inputs(cfg, benchmark), "weights": _weights_inputs(cfg, model)}


def _data_inputs(cfg: PathgenConfig, benchmark: str) -> list[str]:
    root = cfg.evaluation.zeroshot.benchmarks[benchmark].root
    return [str(benchmark_classes(root))] if _generated(cfg, root) else [str(root)]


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


def run_params(cfg: PathgenConfig) -> dict:
    """How the zeroshot job runs (device, batch size, loader workers): a param too, since device
    and batch size can change the floats of the embeddings."""
    return cfg.evaluation.zeroshot.model_dump(mode="json", include={"device", "batch_size", "num_workers"})


def export_params(cfg: PathgenConfig, benchmark: str) -> dict:
    """Everything that shapes the export (its rerun trigger): the benchmark's definition, the
    models' definitions, prompting, the subsampling seed, the batch size of the printed
    commands and the clip_benchmark folder they read and write."""
    zs = cfg.evaluation.zeroshot
    return {"benchmark": zs.benchmarks[benchmark].model_dump(mode="json"),
            "models": {m: model_spec(cfg, m).model_dump(mode="json") for m in model_names(cfg)},
            "prompting": list(zs.prompting), "seed": zs.seed, "batch_size": zs.batch_size,
            "clip_benchmark_dir": str(Layout(cfg).clip_benchmark_dir)}
