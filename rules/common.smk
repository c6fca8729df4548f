# Helpers shared by all rule files.
from pathlib import Path

from pathgen.captioning.chunk_stage import retry_generation
from pathgen.config.resources import RESOURCES_OF
from pathgen.mil import workflow as mil_workflow
from pathgen.runner.params import chunk_job_params
from pathgen.runner.params import encoder_definition as _encoder_definition
from pathgen.selection import workflow as selection_workflow
from pathgen.training.workflow import (
    model_feature_encoders,
    model_feature_files,
    train_inputs,
    trained_models,
)
from pathgen.zeroshot.workflow import export_inputs, export_params, zeroshot_inputs, zeroshot_params
from pathgen.workflow_env import put_checkout_on_pythonpath

put_checkout_on_pythonpath(workflow.basedir)


def res(rule_name, chunks=None):
    """Resources of a rule from config `resources` (falls back to `resources.default`).

    A chunked per-slide job (``chunks``: chunk -> members) asks for one slide's memory, CPUs and GPU (its
    slides run one after another) and members x the per-slide runtime, capped at
    cluster.max_job_minutes; never N x the resources for N slides."""
    r = CFG.rule_resources(RESOURCES_OF.get(rule_name, rule_name))  # aliases: config/resources.py
    cap = CFG.cluster.max_job_minutes  # every submission, aggregates too (training resumes)
    runtime = min(cap, r.runtime)
    if chunks is not None:
        runtime = lambda wc: min(cap, r.runtime * len(chunks[wc.chunk]))
    out = dict(mem_mb=r.mem_mb, runtime=runtime)
    if r.gpu:
        out["gpu"] = r.gpu
    if r.gpu_model:
        out["gpu_model"] = r.gpu_model
    partition = r.slurm_partition or (
        CFG.cluster.gpu_partition if r.gpu else CFG.cluster.cpu_partition
    )
    if partition:
        out["slurm_partition"] = partition
    if r.cpus_per_task:
        out["cpus_per_task"] = r.cpus_per_task
    return out


def threads_of(rule_name):
    return CFG.rule_resources(RESOURCES_OF.get(rule_name, rule_name)).threads


def slide_path(wildcards):
    return str(SLIDES[wildcards.slide].path)


# slide id -> its file as a str, made once (the chunk rules' params and inputs ask per job)
SLIDE_PATHS = {s: str(rec.path) for s, rec in SLIDES.items()}


def chunk_members(chunks):
    """A chunk's member slides -> their slide files (the job reads paths from here, it never
    re-lists the run's slides)."""
    return lambda wc: {s: SLIDE_PATHS.get(s) for s in chunks[wc.chunk]}


def chunk_slide_files(wildcards):
    """The member slides' files that exist: a missing one is quarantined by the job (its state
    record names the path), it never stops the DAG; once restored, the input set changes and
    the chunk reruns for it alone. Demo slides are made by the demo chunk job (its outcome
    file is the tile job's input), so they are not listed here."""
    if CFG.uses_demo:
        return []
    return [SLIDE_PATHS[s] for s in CHUNKS[wildcards.chunk] if SLIDES[s].path.exists()]


def chunk_params(stage):
    """What a chunk job of ``stage`` reads besides its members: the fingerprinted settings,
    its files, upstream stage and error policy (pathgen/runner/params.py)."""
    return chunk_job_params(stage, CFG, L)


def chunk_outputs(stage, chunks):
    return [str(L.chunk_done(stage, c)) for c in chunks]


def mil_feature_chunks(wc):
    """Chunk outcomes of the features a MIL task reads (none for a user's own folder): the
    task runs on the labelled slides whose features finished."""
    if mil_workflow.get_task(CFG.evaluation.mil, wc.task).features_dir is not None:
        return []
    encoder = getattr(wc, "encoder", CFG.features.encoder)
    if encoder in model_feature_encoders(CFG):  # a trained CLIP's (rule extract_model_features)
        return [str(L.features_chunk_done(c, encoder)) for c in CHUNKS]
    if encoder in mil_workflow.registered_feature_encoders(CFG):  # rule extract_encoder_features
        return [str(L.features_chunk_done(c, encoder)) for c in CHUNKS]
    return chunk_outputs("features", CHUNKS)


# -- named input/param functions of the rules (one place, no lambdas in rules) -------------
def get_caption_retry(wc):
    """Retry generation of a caption chunk (bumped by a job whose items failed)."""
    return retry_generation(L.chunk_retry("caption", wc.chunk))


def get_demo_chunk_done(wc):
    return str(L.chunk_done("demo", wc.chunk)) if CFG.uses_demo else []


def get_tile_mpp(wc):
    """Member slide -> (mpp override, its source), for the slides that have one."""
    return {s: TILE_MPP[s] for s in CHUNKS[wc.chunk] if TILE_MPP[s][0] is not None}


def get_case_ids(wc):
    return {s: SLIDES[s].case_id or "" for s in CAPTION_CHUNKS[wc.chunk]}


def get_cancer_types(wc):
    """Member slide -> cancer type (sample sheet, else selection.cancer_type): a changed type
    re-runs that slide's selection."""
    return selection_workflow.cancer_types(CFG, CAPTION_CHUNKS[wc.chunk])


def get_mil_task_inputs(wc):
    return mil_workflow.task_inputs(CFG, wc.task)


def get_mil_task_settings(wc):
    return mil_workflow.task_settings(CFG, wc.task)


def get_encoder_feature_settings(wc):
    """Rule extract_encoder_features: the encoder's definition and the features settings."""
    return mil_workflow.encoder_feature_params(CFG, wc.encoder)["settings"]


def get_encoder_feature_files(wc):
    return mil_workflow.encoder_feature_params(CFG, wc.encoder)["files"]


def get_mil_features_dir(wc):
    return str(mil_workflow.task_features_dir(CFG, wc.task, wc.encoder))


def get_zeroshot_inputs(wc):
    return zeroshot_inputs(CFG, wc.benchmark, wc.model)


def get_zeroshot_params(wc):
    return zeroshot_params(CFG, wc.benchmark, wc.model)


def get_zeroshot_export_inputs(wc):
    return export_inputs(CFG, wc.benchmark)


def get_zeroshot_export_params(wc):
    return export_params(CFG, wc.benchmark)


# What each rule contributes to the run's final targets (its outputs, those named or else all),
# expanded over its wildcard's values. A rule this config does not define contributes nothing.
FINAL_OUTPUTS = [
    ("make_demo_slide", ["done"], lambda: {"chunk": list(CHUNKS)}),
    ("demo_labels", None, dict),
    ("demo_benchmark", ["classes"], dict),
    ("tile", ["done"], lambda: {"chunk": list(CHUNKS)}),
    ("extract_features", ["done"], lambda: {"chunk": list(CHUNKS)}),
    ("select_patches", ["done"], lambda: {"chunk": list(CAPTION_CHUNKS)}),
    ("caption", ["done"], lambda: {"chunk": list(CAPTION_CHUNKS)}),
    ("build_dataset", None, dict),
    ("train_clip", ["final", "loss_png"], dict),
    ("train_baseline", None, lambda: {"baseline": TRAIN_BASELINES}),
    ("zeroshot_table", None, dict),
    ("zeroshot_export", None, lambda: {"benchmark": ZS_BENCHMARKS}),
    ("mil_table", None, dict),
    ("build_instruct", ["json"], dict),
    ("agents_train", ["card"], lambda: {"agent": list(CFG.agents.agents)}),
    ("build_report", None, dict),
]


def final_targets(wc=None, without=()):
    """The run's final targets (rule all), from `rules.<name>.output` of the rules defined."""
    out, defined = [], {r.name for r in workflow.rules}
    for name, keys, values in FINAL_OUTPUTS:
        if name not in defined or name in without:
            continue
        outputs = getattr(rules, name).output
        patterns = [outputs[k] for k in keys] if keys else list(outputs)
        out += expand(patterns, **values()) if values() else [str(p) for p in patterns]
    return out


def get_report_inputs(wc):
    """Every final target of the other stages (the DAG is built after all rule files were
    included, whatever their order)."""
    return final_targets(wc, without=("build_report",))


def get_dataset_out_dir(wc, output):
    return str(Path(output.card_json).parent)


def get_agents_run_dir(wc):
    """One agent's training folder (checkpoints, loss.csv, run.json; model/ is the output)."""
    return str(L.agents_run_dir(wc.agent))


def encoder_definition(name):
    """An encoder's full definition (as a params value: editing `encoders.<name>` reruns its users)."""
    return _encoder_definition(CFG, name)


def chat_definition(user):
    """The text-chat model (the summarize agent, resolved) as a params value: its model,
    endpoints and generation settings rerun the rule that asks for it (`user`, e.g.
    "instruct.generator 'llm'"; a morphometric summarize agent is an error naming it)."""
    from pathgen.instruct.chat import chat_params, chat_settings

    return chat_params(chat_settings(CFG.captioning, user))


def get_baseline_train_inputs(wc):
    return train_inputs(CFG, wc.baseline)


def get_trained_weights(wc):
    return str(L.for_baseline(trained_models(CFG)[wc.model]).training_final)


def get_model_feature_files(wc):
    return model_feature_files(CFG, wc.model)


def get_model_feature_settings(wc):
    """What shapes a trained model's features (its weights' hash is added by the job)."""
    return {
        "encoder": wc.model,
        "encoder_spec": CFG.encoder_spec(wc.model).model_dump(mode="json"),
        "features": CFG.features.model_dump(mode="json", exclude={"encoder"}),
    }
