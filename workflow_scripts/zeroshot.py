"""Snakemake script of rule `zeroshot`: one benchmark x model (logic: pathgen.zeroshot.run.evaluate).

The benchmark's and the model's definitions and the output-shaping settings come from the
rule's params (its rerun trigger), how it runs (device, batch size, workers) from params.run,
the folder from its output; only the evaluation.zeroshot section is validated, never the
whole config. On a local run it first claims a free GPU (pathgen.gpu_slots), before torch."""

from pathlib import Path

from pathgen.gpu_slots import job_gpus
from pathgen.logs import setup_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
with job_gpus(sm, sm.params.run["device"]):
    import torch

    from pathgen.config.evaluation import ZeroShotBenchmark, ZeroShotConfig
    from pathgen.config.features import EncoderSpec
    from pathgen.zeroshot.benchmarks import resolve_benchmark
    from pathgen.zeroshot.run import evaluate

    torch.set_num_threads(sm.threads)
    s = sm.params.settings
    zs = ZeroShotConfig.model_validate({**sm.params.run, **{k: s[k] for k in ("prompting", "logit_scale",
                                                                              "bootstrap", "seed")}})
    bm = resolve_benchmark(sm.wildcards.benchmark, ZeroShotBenchmark.model_validate(s["benchmark"]))
    evaluate(bm, sm.wildcards.model, EncoderSpec.model_validate(s["model"]), zs, Path(sm.output[0]).parent)
