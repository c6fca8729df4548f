"""Snakemake script for rule demo_labels (logic: pathgen.demo.generate.write_labels); the demo
section comes from the rule's params."""

from pathgen.config.inputs import DemoConfig
from pathgen.demo.generate import write_labels
from pathgen.logs import setup_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
write_labels(DemoConfig.model_validate(sm.params.demo), sm.output.labels)
