# WSI multiple-instance-learning benchmarks: splits per task, one job per task x encoder x
# model, and one combined table. Logic: pathgen.mil (see docs/mil.md).
import re

MIL = CFG.evaluation.mil
MIL_TASKS = list(MIL.tasks) if MIL.enabled else []

if MIL_TASKS:
    MIL_ENCODERS = mil_workflow.mil_encoders(CFG)
    MIL_FEATURE_ENCODERS = mil_workflow.registered_feature_encoders(CFG)
    MIL_TABLE = L.mil_table()
    MIL_RUN = L.mil_metrics("{task}", "{encoder}", "{model}")

if MIL_TASKS and MIL_FEATURE_ENCODERS:

    # Features of the other MIL encoders (e.g. UNI, Virchow2 beside the features CLIP): the
    # `features` chunk stage with that encoder, into its own features_<encoder>/ folder.
    rule extract_encoder_features:
        input:
            tiles=rules.tile.output.done,
        output:
            done=L.features_chunk_done("{chunk}", "{encoder}"),
        log:
            L.log("extract_encoder_features", "{encoder}.{chunk}"),
        benchmark:
            L.benchmark("extract_encoder_features", "{encoder}.{chunk}")
        wildcard_constraints:
            encoder="|".join(map(re.escape, MIL_FEATURE_ENCODERS)),
        conda:
            "../envs/torch.yaml"
        threads: threads_of("extract_encoder_features")
        resources:
            **res("extract_encoder_features", CHUNKS),
        params:
            stage="features",
            members=chunk_members(CHUNKS),
            settings=get_encoder_feature_settings,
            files=get_encoder_feature_files,
            upstream="tile",
            on_slide_error=CFG.on_slide_error,
        script:
            "../workflow_scripts/chunk.py"


if MIL_TASKS:

    rule mil_splits:
        input:
            unpack(get_mil_task_inputs),
            features=mil_feature_chunks,
        output:
            summary=L.mil_splits_summary("{task}"),
        log:
            L.log("mil_splits", "{task}"),
        benchmark:
            L.benchmark("mil_splits", "{task}")
        wildcard_constraints:
            task="|".join(MIL_TASKS),
        conda:
            "../envs/report.yaml"
        threads: threads_of("mil_splits")
        resources:
            **res("mil_splits"),
        params:
            task=get_mil_task_settings,
            seed=MIL.seed,
        script:
            "../workflow_scripts/mil_splits.py"

    rule mil:
        input:
            unpack(get_mil_task_inputs),
            splits=L.mil_splits_summary("{task}"),
            features=mil_feature_chunks,
        output:
            metrics=MIL_RUN["metrics"],
            table=MIL_RUN["table"],
        log:
            L.log("mil", "{task}.{encoder}.{model}"),
        benchmark:
            L.benchmark("mil", "{task}.{encoder}.{model}")
        wildcard_constraints:
            task="|".join(MIL_TASKS),
            encoder="|".join(map(re.escape, MIL_ENCODERS)),
            model="|".join(MIL.models),
        conda:
            "../envs/torch.yaml"
        threads: threads_of("mil")
        resources:
            **res("mil"),
        params:
            settings=MIL.model_dump(mode="json", exclude={"tasks", "encoders", "models"}),
            task=get_mil_task_settings,
            features_dir=get_mil_features_dir,
            slides=mil_workflow.slide_files(CFG, SLIDES),
        script:
            "../workflow_scripts/mil.py"

    rule mil_table:
        input:
            metrics=[str(p) for p in mil_workflow.all_metrics_files(CFG)],
        output:
            csv=MIL_TABLE["csv"],
            md=MIL_TABLE["md"],
        log:
            L.log("mil_table"),
        benchmark:
            L.benchmark("mil_table")
        conda:
            "../envs/report.yaml"
        threads: threads_of("mil_table")
        resources:
            **res("mil_table"),
        script:
            "../workflow_scripts/mil_table.py"
