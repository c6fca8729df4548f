# Representative patch selection (prompt retrieval + k-means prototypes), one job per
# captioned slide (demo: all but the holdout slides; real data: every slide).

ALL_TARGETS.extend(str(L.selection(s)) for s in CAPTION_SLIDE_IDS)


rule select_patches:
    input:
        features=L.features("{slide}"),
        slide=slide_path,
        # optional user files the selection reads (a change re-runs it)
        extra=[str(p) for p in (CFG.selection.reports, CFG.selection.prompts_file) if p],
    output:
        selection=L.selection("{slide}"),
        patches=directory(L.selection_patches("{slide}")),
    params:
        # every selection setting and the encoder: a change re-runs the job
        settings=CFG.selection.model_dump(mode="json"),
        text_encoder=CFG.selection.text_encoder or CFG.features.encoder,
        case_id=lambda wc: SLIDES[wc.slide].case_id or "",
    log:
        L.log("select_patches", "{slide}"),
    benchmark:
        L.benchmark("select_patches", "{slide}")
    threads: threads_of("select_patches")
    resources:
        **res("select_patches"),
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/select_patches.py"
