"""Snakemake script of rule `mil_splits` (logic: pathgen.mil.api.task_splits)."""

from pathgen.config import validate_config
from pathgen.logs import setup_logging
from pathgen.mil import tasks
from pathgen.slide_state import slides_with_status

sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
# Slides whose features finished (chunk outcomes); None = a folder of the user's own features.
chunks = list(sm.input.features)
tasks.task_splits(validate_config(sm.config), sm.wildcards.task,
                  set(slides_with_status(chunks)) if chunks else None)
