# Captioning agents (describe -> revise -> summarize), one job per chunk of captioned slides.
# Each job holds one `llm_slots` unit: `snakemake --resources llm_slots=N` bounds how many
# chunks talk to the model server (or load a local model) at once. Demo holdout slides feed
# the zero-shot benchmark and are never captioned (CAPTION_CHUNKS, Snakefile).


rule caption:
    input:
        selection=rules.select_patches.output.done,
    output:
        done=L.chunk_done("caption", "{chunk}"),
    log:
        L.log("caption", "{chunk}"),
    benchmark:
        L.benchmark("caption", "{chunk}")
    conda:
        "../envs/llm.yaml"
    threads: threads_of("caption")
    resources:
        **res("caption", CAPTION_CHUNKS),
        llm_slots=1,
    params:
        # settings: every caption-shaping setting and the filters (a change re-runs the job;
        # the kept <slide>.partial.jsonl makes a filter-only change a cheap re-filter)
        **chunk_params("caption"),
        members=chunk_members(CAPTION_CHUNKS),
        # bumped by a job whose caption items failed: the next run retries them
        retry=get_caption_retry,
    script:
        "../workflow_scripts/chunk.py"
