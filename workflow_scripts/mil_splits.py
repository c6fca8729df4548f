"""Snakemake script of rule `mil_splits` (logic: pathgen.mil.api.task_splits).

The task's definition and the seed come from the rule's params (its rerun trigger), the folder
from its output; only the task's section is validated, not the whole config."""

from pathlib import Path

from pathgen.config.evaluation import MilTaskConfig
from pathgen.logs import setup_logging
from pathgen.mil import tasks
from pathgen.runner.state import slides_with_status

sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
# Slides whose features finished (chunk outcomes); None = a folder of the user's own features.
chunks = list(sm.input.features)
tasks.task_splits(MilTaskConfig.model_validate(sm.params.task), Path(sm.output.summary).parent,
                  sm.params.seed, set(slides_with_status(chunks)) if chunks else None)
