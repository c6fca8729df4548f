"""Snakemake script for rule demo_benchmark (logic: pathgen.demo.benchmark.demo_benchmark).

Everything comes from the rule: the demo settings that shape the slides and the benchmark and
the tiling section (params, the rerun trigger), the holdout slides' files (params.sources) and
the folder (output); only those sections are validated."""

from pathlib import Path

from pathgen.config.inputs import DemoConfig
from pathgen.config.tiling import TilingConfig
from pathgen.demo.benchmark import demo_benchmark
from pathgen.logs import setup_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
# params.demo + params.benchmark: the demo keys this job reads (the rest keep their defaults)
demo = DemoConfig.model_validate({**sm.params.demo, **sm.params.benchmark})
demo_benchmark(demo, TilingConfig.model_validate(sm.params.tiling), sm.params.sources["slides"],
               sm.params.sources["regions"], Path(sm.output.classes).parent)
