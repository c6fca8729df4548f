"""Snakemake script for rule baseline_data (logic: pathgen.training.baselines)."""

from pathlib import Path

from pathgen.config import validate_config
from pathgen.logs import setup_logging
from pathgen.training.baselines import build_slide_text_dataset

sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
build_slide_text_dataset(validate_config(sm.config), {"csv": Path(sm.output.csv),
                                                      "card": Path(sm.output.card)})
