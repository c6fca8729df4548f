"""Snakemake script of rule `select_patches` (logic: pathgen.selection.runner)."""

from pathlib import Path

from pathgen.config import validate_config
from pathgen.logs import setup_logging
from pathgen.selection.runner import run_selection

setup_logging(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
cfg = validate_config(snakemake.config, "the workflow config")  # noqa: F821
run_selection(cfg, snakemake.wildcards.slide, snakemake.input.features,  # noqa: F821
              snakemake.input.slide, snakemake.output.selection,  # noqa: F821
              snakemake.output.patches, case_id=snakemake.params.case_id or None,  # noqa: F821
              embeddings_cache=Path(snakemake.output.selection).parent / "prompt_embeddings")  # noqa: F821
