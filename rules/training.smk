# CLIP training with open_clip's own trainer (pathgen.training wraps open_clip_train.main):
# every configured stage in order, finished stages skipped, crashed ones resumed
# (--resume latest). Output: results/training/final.pt (+ final.json, loss curve).
from pathgen.training.workflow import train_inputs

TRAIN_FILES = {k: str(v) for k, v in L.training_outputs().items()}


if CFG.training.enabled:

    ALL_TARGETS.extend([TRAIN_FILES["final"], TRAIN_FILES["loss_png"]])

    rule train_clip:
        input:
            train_inputs(CFG),
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
            **res("train_clip"),
        params:
            training=CFG.training.model_dump(mode="json"),
        script:
            "../workflow_scripts/train_clip.py"
