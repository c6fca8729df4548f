"""Snakemake script for rule agents_build_data (logic: pathgen.agents.stage.build_stage)."""

from pathgen.agents.stage import build_stage
from pathgen.config import validate_config
from pathgen.logs import setup_logging
from pathgen.paths import Layout
from pathgen.slide_state import slides_with_status

sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
cfg = validate_config(sm.config)
L = Layout(cfg)
slides = slides_with_status(sm.input.captions)  # captioned slides (quarantined ones left out)
# teacher 'captions': this run's caption records; 'backend': the selected patches, described anew
inputs = [str(L.selection(s) if cfg.agents.data.teacher == "backend" else L.captions(s)) for s in slides]
build_stage(cfg, inputs, sm.params.out_dir, sm.params.patches_root)
