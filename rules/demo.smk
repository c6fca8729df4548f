# Embedded demo: synthetic Aperio slides with ground truth (only when demo.enabled and no
# real slides are configured), their label table, and the holdout zero-shot benchmark.
from pathgen.demo.benchmark import zeroshot_dir

DEMO_ACTIVE = L.using_demo
DEMO_SETTINGS = CFG.demo.model_dump(mode="json")
DEMO_ZS = zeroshot_dir(CFG)

if DEMO_ACTIVE:
    ALL_TARGETS.extend([str(L.demo_labels), str(DEMO_ZS / "classes.json")])

    rule make_demo_slide:
        output:
            svs=L.demo_slide("{slide}"),
            regions=L.demo_regions("{slide}"),
        params:
            demo=DEMO_SETTINGS,
        log:
            L.log("make_demo_slide", "{slide}"),
        benchmark:
            L.benchmark("make_demo_slide", "{slide}")
        threads: threads_of("make_demo_slide")
        resources:
            **res("make_demo_slide"),
        conda:
            "../envs/wsi.yaml"
        script:
            "../workflow_scripts/demo_slide.py"

    rule demo_labels:
        output:
            labels=L.demo_labels,
        params:
            demo=DEMO_SETTINGS,
        log:
            L.log("demo_labels"),
        benchmark:
            L.benchmark("demo_labels")
        threads: threads_of("demo_labels")
        resources:
            **res("demo_labels"),
        conda:
            "../envs/wsi.yaml"
        script:
            "../workflow_scripts/demo_labels.py"

    rule demo_benchmark:
        input:
            labels=L.demo_labels,
            slides=[L.demo_slide(s) for s in HOLDOUT_IDS],
            regions=[L.demo_regions(s) for s in HOLDOUT_IDS],
        output:
            classes=DEMO_ZS / "classes.json",
            template=DEMO_ZS / "template",
            prompts=DEMO_ZS / "prompts_conch.json",
            manifest=DEMO_ZS / "manifest.csv",
        params:
            demo=DEMO_SETTINGS,
            tiling=CFG.tiling.model_dump(mode="json"),
        log:
            L.log("demo_benchmark"),
        benchmark:
            L.benchmark("demo_benchmark")
        threads: threads_of("demo_benchmark")
        resources:
            **res("demo_benchmark"),
        conda:
            "../envs/wsi.yaml"
        script:
            "../workflow_scripts/demo_benchmark.py"
