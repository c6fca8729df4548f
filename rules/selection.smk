# Representative patch selection (prompt retrieval + k-means prototypes), one job per chunk
# of captioned slides (demo: all but the holdout slides; real data: every slide).

SELECTION_FILES = [str(p) for p in (CFG.selection.reports, CFG.selection.prompts_file) if p]


rule select_patches:
    input:
        features=rules.extract_features.output.done,
        # optional user files the selection reads (a change re-runs it)
        extra=SELECTION_FILES,
    output:
        done=L.chunk_done("select", "{chunk}"),
    log:
        L.log("select_patches", "{chunk}"),
    benchmark:
        L.benchmark("select_patches", "{chunk}")
    conda:
        "../envs/torch.yaml"
    threads: threads_of("select_patches")
    resources:
        **res("select_patches", CAPTION_CHUNKS),
    params:
        # settings (every selection setting, the text encoder, the llm report extractor's
        # chat model), files, upstream and the features encoder (pathgen/selection/chunk_stage.py)
        **chunk_params("select"),
        members=chunk_members(CAPTION_CHUNKS),
        case_id=get_case_ids,
        cancer_type=get_cancer_types,
        files_read=SELECTION_FILES,
    script:
        "../workflow_scripts/chunk.py"
