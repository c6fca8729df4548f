"""Snakemake script of rule `zeroshot_export`: one benchmark in CLIP_benchmark's layout
(logic: pathgen.zeroshot.export.export_benchmark).

The benchmark's and the models' definitions, prompting, seed, batch size (of the printed
commands) and the clip_benchmark folder come from params.export (the rerun trigger); only
those sections are validated, never the whole config."""

import torch

from pathgen.config.evaluation import ZeroShotBenchmark, ZeroShotConfig
from pathgen.config.features import EncoderSpec
from pathgen.logs import setup_logging
from pathgen.zeroshot.benchmarks import resolve_benchmark
from pathgen.zeroshot.export import export_benchmark

sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
torch.set_num_threads(sm.threads)
p = sm.params.export
zs = ZeroShotConfig.model_validate({k: p[k] for k in ("prompting", "seed", "batch_size")})
export_benchmark(resolve_benchmark(sm.wildcards.benchmark, ZeroShotBenchmark.model_validate(p["benchmark"])), zs,
                 {m: EncoderSpec.model_validate(spec) for m, spec in p["models"].items()},
                 p["clip_benchmark_dir"])
