"""Snakemake script of rule `zeroshot`: one benchmark x model (logic: pathgen.zeroshot.run.evaluate).

The benchmark's and the model's definitions come from the rule's params (its rerun trigger),
the folder from its output; only the evaluation.zeroshot section (device, batch size, workers)
is validated here, not the whole config."""

from pathlib import Path

import torch

from pathgen.config.evaluation import ZeroShotBenchmark, ZeroShotConfig
from pathgen.config.features import EncoderSpec
from pathgen.logs import setup_logging
from pathgen.zeroshot.benchmarks import resolve_benchmark
from pathgen.zeroshot.run import evaluate

sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
torch.set_num_threads(sm.threads)
s = sm.params.settings
zs = ZeroShotConfig.model_validate((sm.config.get("evaluation") or {}).get("zeroshot") or {})
# the params' values are the ones the rerun trigger saw (they come from the same config)
zs = zs.model_copy(update={k: s[k] for k in ("prompting", "logit_scale", "bootstrap", "seed")})
bm = resolve_benchmark(sm.wildcards.benchmark, ZeroShotBenchmark.model_validate(s["benchmark"]))
evaluate(bm, sm.wildcards.model, EncoderSpec.model_validate(s["model"]), zs, Path(sm.output[0]).parent)
