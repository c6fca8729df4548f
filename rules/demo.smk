# Embedded demo: synthetic Aperio slides with ground truth (only when demo.enabled and no
# real slides are configured), their label table, and the holdout zero-shot benchmark.
from pathgen.demo import workflow as demo_workflow
from pathgen.runner import get_stage

DEMO_SETTINGS = CFG.demo.model_dump(mode="json")
# What shapes one demo slide (pathgen/demo/chunk_stage.py): growing the cohort never redraws one.
DEMO_SLIDE_SETTINGS = get_stage("demo").settings(CFG)
# What shapes the holdout benchmark besides its slides.
DEMO_BENCHMARK_KEYS = {
    "holdout_fraction",
    "zeroshot_min_purity",
    "zeroshot_max_per_class",
    "zeroshot_stride",
    "zeroshot_template",
}
DEMO_BENCHMARK_SETTINGS = CFG.demo.model_dump(mode="json", include=DEMO_BENCHMARK_KEYS)
DEMO_ZS = L.demo_zeroshot_files()
# The holdout slides' SVS + ground truth the benchmark is cut from (made by make_demo_slide).
DEMO_HOLDOUT_SOURCES = demo_workflow.holdout_sources(CFG, HOLDOUT_IDS)

if CFG.uses_demo:

    rule make_demo_slide:
        output:
            done=L.chunk_done("demo", "{chunk}"),
        log:
            L.log("make_demo_slide", "{chunk}"),
        benchmark:
            L.benchmark("make_demo_slide", "{chunk}")
        conda:
            "../envs/wsi.yaml"
        threads: threads_of("make_demo_slide")
        resources:
            **res("make_demo_slide", CHUNKS),
        params:
            **chunk_params("demo"),
            members=chunk_members(CHUNKS),
        script:
            "../workflow_scripts/chunk.py"

    rule demo_labels:
        output:
            labels=L.demo_labels,
        log:
            L.log("demo_labels"),
        benchmark:
            L.benchmark("demo_labels")
        conda:
            "../envs/wsi.yaml"
        threads: threads_of("demo_labels")
        resources:
            **res("demo_labels"),
        params:
            demo=DEMO_SETTINGS,
        script:
            "../workflow_scripts/demo_labels.py"

    rule demo_benchmark:
        input:
            # ancient: a chunk that gains new (caption) members rewrites its outcome file,
            # which must not rebuild the benchmark and so re-run zero-shot on an unchanged model
            demo=[
                ancient(str(L.chunk_done("demo", c)))
                for c, m in CHUNKS.items()
                if _HOLDOUT & set(m)
            ],
        output:
            **DEMO_ZS,
        log:
            L.log("demo_benchmark"),
        benchmark:
            L.benchmark("demo_benchmark")
        conda:
            "../envs/wsi.yaml"
        threads: threads_of("demo_benchmark")
        resources:
            **res("demo_benchmark"),
        params:
            demo=DEMO_SLIDE_SETTINGS,
            benchmark=DEMO_BENCHMARK_SETTINGS,
            sources=DEMO_HOLDOUT_SOURCES,
            tiling=CFG.tiling.model_dump(mode="json"),
        script:
            "../workflow_scripts/demo_benchmark.py"
