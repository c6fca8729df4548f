"""Workflow glue of the training area (may take the whole config): parse-time helpers for
rules/training.smk (kept here so the rules file holds only rules), what `pathgen train`
resolves from the config, and the chunk-job entry of rule extract_model_features."""

from __future__ import annotations

from pathlib import Path

from ..config import ConfigError, PathgenConfig
from ..dataset.files import dataset_files, shards_count
from ..paths import Layout

# The caption-dataset files the slide_text baseline reads (keys of dataset.files.dataset_files).
SLIDE_TEXT_SOURCES = ("open_clip_csv", "card_json", "pathgen_json")


def train_inputs(cfg: PathgenConfig, baseline: str | None = None) -> dict[str, str | list[str]]:
    """Named inputs of rule train_clip / train_baseline: ``default_csv`` + ``default_card`` (the
    caption dataset's, or the baseline's pairs; only when a stage has empty `data`), ``sources``
    (CSV sources of the stages and count.json of WebDataset ones) and ``model_config``
    (training.model_config_file, whose contents shape the architecture)."""
    L = Layout(cfg, baseline)
    tc = cfg.training
    files: dict[str, str | list[str]] = {}
    if any(not s.data for s in tc.stages):
        card = L.training_data_files()["card"] if baseline else L.dataset_card
        files.update(default_csv=str(L.training_default_csv), default_card=str(card))
    sources = {d for s in tc.stages for d in s.data if d.lower().endswith((".csv", ".tsv"))}
    sources |= {str(shards_count(d)) for s in tc.stages for d in s.data
                if ".tar" in d and shards_count(d).exists()}
    if sources:
        files["sources"] = sorted(sources)
    if tc.model_config_file:
        files["model_config"] = str(tc.model_config_file)
    return files


def train_resources(cfg: PathgenConfig, base: dict) -> dict:
    """SLURM resources of rules train_clip / train_baseline: ``base`` (res() of the rule) as is
    for one process; for nodes x gpus > 1 processes one job over training.nodes nodes with one
    task per GPU, in the snakemake-executor-plugin-slurm 2.8.0 names:

    * ``nodes`` -> ``sbatch --nodes=N``;
    * ``gres="gpu[:<model>]:G"`` -> ``--gres=gpu:G``, G GPUs on *every* node (its ``gpu``
      resource would be ``--gpus``, a total SLURM may spread unevenly, so it is dropped);
    * ``mpi="srun"``: the job step runs the rule in the batch script (no ``srun -n1`` around
      it), and pathgen.training launches the tasks with srun itself;
    * ``tasks_per_node=G`` (G > 1) -> ``--ntasks-per-node=G``, else ``tasks=N*G`` ->
      ``--ntasks``; ``tasks_per_gpu=0`` keeps the plugin from turning ``tasks`` into
      ``--ntasks-per-gpu``;
    * ``cpus-per-task`` stays the rule's threads (each task's data loading); ``mem_mb`` is per
      node.

    A CPU run (training.device cpu: tests) asks for no GPU and ``tasks=N*G`` CPU tasks."""
    tc = cfg.training
    per_node = max(tc.gpus, 1)
    if tc.nodes * per_node <= 1:
        return dict(base)
    out = {k: v for k, v in base.items() if k not in ("gpu", "gpu_model")}
    out.update(nodes=tc.nodes, mpi="srun", tasks_per_gpu=0)
    if tc.gpus and tc.device != "cpu":
        model = base.get("gpu_model")
        out["gres"] = f"gpu:{model}:{tc.gpus}" if model else f"gpu:{tc.gpus}"
        if per_node > 1:
            out["tasks_per_node"] = per_node
        else:
            out["tasks"] = tc.nodes
    else:
        out["tasks"] = tc.nodes * per_node
    return out


def train_params(cfg: PathgenConfig) -> dict:
    """params.training of rules train_clip and train_baseline (their rerun trigger): the whole
    training section but the baselines' own data settings. Everything else that shapes the
    model is a file (train_inputs) or a folder of the outputs."""
    return cfg.training.model_dump(mode="json", exclude={"baselines", "slide_text"})


def train_arguments(cfg: PathgenConfig, baseline: str | None = None) -> dict:
    """The arguments of pathgen.training.run.train for this config (what `pathgen train` passes;
    the rules pass the same from their params, input and output)."""
    if baseline is not None and baseline not in cfg.training.baselines:
        raise ConfigError(f"training baseline '{baseline}' is not in training.baselines "
                          f"({cfg.training.baselines}); add it there")
    L = Layout(cfg, baseline)
    default = L.training_default_csv if any(not s.data for s in cfg.training.stages) else None
    return {"tc": cfg.training, "training_dir": L.training_dir, "default_csv": default,
            "baseline": baseline}


def slide_text_labels(cfg: PathgenConfig) -> Path:
    """The labels table of the slide_text baseline (the demo's when unset and running the demo)."""
    st = cfg.training.slide_text
    if st.labels is not None:
        return Path(st.labels)
    if cfg.uses_demo:
        return Layout(cfg).demo_labels
    raise ConfigError("training.baselines lists slide_text but training.slide_text.labels is not "
                      "set: give a CLAM dataset CSV (slide_id,label) of the captioned slides")


def baseline_data_inputs(cfg: PathgenConfig) -> dict[str, str]:
    """Inputs of rule baseline_data: the caption dataset's files it reads (SLIDE_TEXT_SOURCES)
    and the slide labels."""
    ds = dataset_files(Layout(cfg).dataset_dir)
    return {**{k: str(ds[k]) for k in SLIDE_TEXT_SOURCES}, "labels": str(slide_text_labels(cfg))}


def trained_models(cfg: PathgenConfig) -> dict[str, str | None]:
    """Encoders whose weights this workflow trains -> their baseline (None = the main CLIP):
    training.register_as and, for each of training.baselines, `<register_as>-<baseline>`."""
    tc = cfg.training
    if not tc.enabled:
        return {}
    return {tc.register_as: None, **{tc.baseline_encoder(b): b for b in tc.baselines}}


def model_feature_encoders(cfg: PathgenConfig) -> list[str]:
    """Trained encoders the MIL benchmarks read features of (made by rule extract_model_features)."""
    mil = cfg.evaluation.mil
    if not mil.enabled or not mil.tasks:
        return []
    trained = trained_models(cfg)
    return [e for e in mil.encoders if e in trained and e != cfg.features.encoder]


def model_feature_files(cfg: PathgenConfig, model: str) -> dict[str, str]:
    """The `features` chunk stage's file templates for a trained model's encoder (its own
    features folder, chunk outcomes and state records)."""
    from ..runner.params import chunk_files

    run_cfg = cfg.model_copy(update={"features": cfg.features.model_copy(update={"encoder": model})})
    return chunk_files("features", Layout(run_cfg), "tile")


def run_model_features(sm) -> dict:
    """Job entry of rule extract_model_features (``sm``: Snakemake's `snakemake` object): the
    `features` chunk stage with the trained model. The model's definition and the features
    settings come from params.settings (the rerun trigger, with the weights' hash added), its
    files from params.files (:func:`model_feature_files`)."""
    from ..runner import ChunkContext, run_chunk_job
    from .model_features import resolve_model_features

    ctx = ChunkContext.from_job("features", sm)
    mf = resolve_model_features(ctx.settings, sm.input.weights)
    if mf.name != sm.wildcards.model:
        raise ConfigError(f"extract_model_features {sm.wildcards.model}: params.settings are of "
                          f"encoder '{mf.name}'")
    ctx.settings = mf.settings
    return run_chunk_job("features", sm, ctx)
