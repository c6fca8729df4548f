# Captioning agents (describe -> revise -> summarize), one job per non-holdout slide.
# Each job holds one `llm_slots` unit: `snakemake --resources llm_slots=N` bounds how many
# slides talk to the model server (or load a local model) at once.

# Demo holdout slides feed the zero-shot benchmark and are never captioned
# (CAPTION_SLIDE_IDS is defined in the Snakefile).


ALL_TARGETS.extend(str(L.captions(s)) for s in CAPTION_SLIDE_IDS)


rule caption:
    input:
        selection=L.selection("{slide}"),
        patches=L.selection_patches("{slide}"),
    output:
        captions=L.captions("{slide}"),
        rejects=L.captions_dir() / "{slide}.rejects.jsonl",
        summary=L.captions_dir() / "{slide}.summary.json",
    params:
        patches_root=L.selection_dir() / "patches",
        # every caption-shaping setting and the filters: a change re-runs the job; the kept
        # <slide>.partial.jsonl makes a filter-only change a cheap re-filter
        settings=CFG.captioning.model_dump(mode="json"),
    log:
        L.log("caption", "{slide}"),
    benchmark:
        L.benchmark("caption", "{slide}")
    threads: threads_of("caption")
    resources:
        llm_slots=1,
        **res("caption"),
    conda:
        "../envs/llm.yaml"
    script:
        "../workflow_scripts/caption.py"
