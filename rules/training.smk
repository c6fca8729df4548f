# CLIP training with open_clip's own trainer (pathgen.training wraps open_clip_train.main):
# every configured stage in order, finished stages skipped, crashed ones resumed
# (--resume latest). training.nodes x training.gpus > 1 under SLURM: one job over that many
# nodes, one srun task per GPU (train_resources). Output: results/training/final.pt
# (+ final.json, loss curve).
# Baselines (training.baselines): the same schedule on other texts for the same patches,
# in results/training/baselines/<baseline>/; the trained CLIPs' features feed the MIL tasks.
import re

from pathgen.training.workflow import (
    baseline_data_inputs,
    model_feature_encoders,
    train_inputs,
    train_params,
    train_resources,
)

TRAIN_FILES = {k: str(v) for k, v in L.training_outputs().items()}
TRAIN_BASELINES = list(CFG.training.baselines) if CFG.training.enabled else []
BASELINE_L = L.for_baseline("{baseline}")
MODEL_FEATURES = model_feature_encoders(CFG)


if CFG.training.enabled:

    rule train_clip:
        input:
            **train_inputs(CFG),
        output:
            final=TRAIN_FILES["final"],
            meta=TRAIN_FILES["meta"],
            loss_png=TRAIN_FILES["loss_png"],
            loss_csv=TRAIN_FILES["loss_csv"],
        log:
            L.log("train_clip"),
        benchmark:
            L.benchmark("train_clip")
        conda:
            "../envs/torch.yaml"
        threads: threads_of("train_clip")
        resources:
            **train_resources(CFG, res("train_clip")),
        params:
            training=train_params(CFG),
        script:
            "../workflow_scripts/train_clip.py"


if TRAIN_BASELINES:

    rule baseline_data:
        input:
            **baseline_data_inputs(CFG),
        output:
            **{k: str(v) for k, v in BASELINE_L.training_data_files().items()},
        log:
            L.log("baseline_data", "{baseline}"),
        benchmark:
            L.benchmark("baseline_data", "{baseline}")
        wildcard_constraints:
            baseline="slide_text",
        conda:
            "../envs/report.yaml"
        threads: threads_of("baseline_data")
        resources:
            **res("baseline_data"),
        params:
            slide_text=CFG.training.slide_text.model_dump(mode="json"),
        script:
            "../workflow_scripts/baseline_data.py"

    rule train_baseline:
        input:
            unpack(get_baseline_train_inputs),
        output:
            **{k: str(v) for k, v in BASELINE_L.training_outputs().items()},
        log:
            L.log("train_baseline", "{baseline}"),
        benchmark:
            L.benchmark("train_baseline", "{baseline}")
        wildcard_constraints:
            baseline="|".join(TRAIN_BASELINES),
        conda:
            "../envs/torch.yaml"
        threads: threads_of("train_baseline")
        resources:
            **train_resources(CFG, res("train_baseline")),
        params:
            # the same schedule as train_clip: a change there retrains both
            training=train_params(CFG),
        script:
            "../workflow_scripts/train_baseline.py"


if MODEL_FEATURES:

    rule extract_model_features:
        input:
            tiles=rules.tile.output.done,
            weights=get_trained_weights,
        output:
            done=L.features_chunk_done("{chunk}", "{model}"),
        log:
            L.log("extract_model_features", "{model}.{chunk}"),
        benchmark:
            L.benchmark("extract_model_features", "{model}.{chunk}")
        wildcard_constraints:
            model="|".join(map(re.escape, MODEL_FEATURES)),
        conda:
            "../envs/torch.yaml"
        threads: threads_of("extract_model_features")
        resources:
            **res("extract_model_features", CHUNKS),
        params:
            members=chunk_members(CHUNKS),
            settings=get_model_feature_settings,
            files=get_model_feature_files,
            upstream="tile",
            on_slide_error=CFG.on_slide_error,
        script:
            "../workflow_scripts/model_features.py"
