"""Snakemake script for rule agents_build_data (logic: pathgen.agents.stage.build_stage).

The rule passes everything: params hold agents.data, captioning and tiling's target µm/px
(its rerun trigger) and the captions/selection folders; the input, the caption chunk outcomes."""

from pathgen.agents.stage import build_stage
from pathgen.config.agents import AgentsDataConfig
from pathgen.config.captioning import CaptioningConfig
from pathgen.logs import setup_logging
from pathgen.captioning.files import slide_captions_file
from pathgen.selection.files import slide_selection_file
from pathgen.runner.state import slides_with_status

sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
p, s = sm.params, sm.params.settings
data = AgentsDataConfig.model_validate(s["data"])
slides = slides_with_status(sm.input.captions)  # captioned slides (quarantined ones left out)
# teacher 'captions': this run's caption records; 'backend': the selected patches, described anew
inputs = [str(slide_selection_file(p.selection_dir, x) if data.teacher == "backend"
              else slide_captions_file(p.captions_dir, x)) for x in slides]
build_stage(data, CaptioningConfig.model_validate(s["captioning"]), inputs, p.out_dir, p.patches_root,
            target_mpp=s["target_mpp"])
