"""Snakemake script for rule baseline_data (logic: pathgen.training.baselines).

Runs on the rule's params.slide_text (training.slide_text, its rerun trigger), the caption
dataset's files and the labels table from input and the pairs' files from output; only that
section is validated, not the whole config."""

from pathlib import Path

from pathgen.config.training import SlideTextConfig
from pathgen.logs import setup_logging
from pathgen.training.baselines import build_slide_text_dataset
from pathgen.training.workflow import SLIDE_TEXT_SOURCES

sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
build_slide_text_dataset(SlideTextConfig.model_validate(sm.params.slide_text),
                         {k: Path(getattr(sm.input, k)) for k in SLIDE_TEXT_SOURCES},
                         Path(sm.input.labels),
                         {"csv": Path(sm.output.csv), "card": Path(sm.output.card)})
