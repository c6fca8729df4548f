# Zero-shot patch classification: one job per benchmark x model (all prompting modes),
# then one combined table. Benchmarks and models come from evaluation.zeroshot.
from pathgen.zeroshot.workflow import alternatives, model_names, run_params

ZS = CFG.evaluation.zeroshot
ZS_BENCHMARKS = list(ZS.benchmarks)
ZS_MODELS = model_names(CFG)
ZS_TABLE = {k: str(v) for k, v in L.zeroshot_table().items()}


if ZS.enabled and ZS_BENCHMARKS and ZS_MODELS:

    rule zeroshot:
        input:
            unpack(get_zeroshot_inputs),
        output:
            [str(L.zeroshot_result("{benchmark}", "{model}", p)) for p in ZS.prompting],
        log:
            L.log("zeroshot", "{benchmark}.{model}"),
        benchmark:
            L.benchmark("zeroshot", "{benchmark}.{model}")
        wildcard_constraints:
            benchmark=alternatives(ZS_BENCHMARKS),
            model=alternatives(ZS_MODELS),
        conda:
            "../envs/torch.yaml"
        threads: threads_of("zeroshot")
        resources:
            **res("zeroshot"),
        params:
            settings=get_zeroshot_params,
            run=run_params(CFG),
        script:
            "../workflow_scripts/zeroshot.py"

    rule zeroshot_table:
        input:
            [
                str(L.zeroshot_result(b, m, p))
                for b in ZS_BENCHMARKS
                for m in ZS_MODELS
                for p in ZS.prompting
            ],
        output:
            **ZS_TABLE,
        log:
            L.log("zeroshot_table"),
        benchmark:
            L.benchmark("zeroshot_table")
        conda:
            "../envs/report.yaml"
        threads: threads_of("zeroshot_table")
        resources:
            **res("zeroshot_table"),
        script:
            "../workflow_scripts/zeroshot_table.py"

    if ZS.clip_benchmark_export:

        # Each benchmark (+ model folders) in CLIP_benchmark's wds layout; docs/zeroshot.md.
        rule zeroshot_export:
            input:
                unpack(get_zeroshot_export_inputs),
            output:
                str(L.clip_benchmark_files(L.clip_benchmark_dataset("{benchmark}"))["export"]),
            log:
                L.log("zeroshot_export", "{benchmark}"),
            benchmark:
                L.benchmark("zeroshot_export", "{benchmark}")
            wildcard_constraints:
                benchmark=alternatives(ZS_BENCHMARKS),
            conda:
                "../envs/torch.yaml"
            threads: threads_of("zeroshot_export")
            resources:
                **res("zeroshot_export"),
            params:
                export=get_zeroshot_export_params,
            script:
                "../workflow_scripts/zeroshot_export.py"
