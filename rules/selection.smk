# Representative patch selection (prompt retrieval + k-means prototypes), one job per chunk
# of captioned slides (demo: all but the holdout slides; real data: every slide).

SELECTION_FILES = [str(p) for p in (CFG.selection.reports, CFG.selection.prompts_file) if p]
ALL_TARGETS.extend(chunk_outputs("select", CAPTION_CHUNKS))


rule select_patches:
    input:
        features=L.chunk_done("features", "{chunk}"),
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
        members=chunk_members(CAPTION_CHUNKS),
        # every selection setting and the encoder: a change re-runs the job
        settings={
            "selection": CFG.selection.model_dump(mode="json"),
            "text_encoder": encoder_definition(CFG.selection.text_encoder or CFG.features.encoder),
            # the llm report extractor's chat model (summarize agent)
            "report_chat": (
                chat_definition(selection_workflow.REPORT_CHAT_USER)
                if selection_workflow.uses_report_chat(CFG)
                else None
            ),
        },
        case_id=get_case_ids,
        cancer_type=get_cancer_types,
        files=SELECTION_FILES,
    script:
        "../workflow_scripts/select_patches.py"
