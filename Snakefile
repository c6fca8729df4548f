# pathgen workflow: slides -> tiles -> features -> selection -> captions -> dataset
# -> CLIP training -> zero-shot + MIL benchmarks -> report.
# All logic lives in the `pathgen` package; rules are thin and call workflow_scripts/.
from snakemake.utils import min_version

from pathgen.runner.chunks import plan_chunks
from pathgen.config import validate_config
from pathgen.paths import Layout
from pathgen.cohort import SLIDE_ID_PATTERN, list_slides

min_version("9.27.1")


configfile: "config.yaml"


CFG = validate_config(config, "the workflow config (config.yaml + --config/--configfile)")
L = Layout(CFG)
SLIDES = list_slides(CFG)
SLIDE_IDS = list(SLIDES)
# Demo slides held out of captioning/CLIP training (they feed the demo zero-shot benchmark);
# with real slides every slide is captioned.
HOLDOUT_IDS = L.holdout_ids(SLIDE_IDS)
CAPTION_SLIDE_IDS = [s for s in SLIDE_IDS if s not in HOLDOUT_IDS]
# The per-slide stages run one job per chunk of slides (pathgen/chunks.py): stable membership
# from <results_dir>/chunks.tsv, new slides appended.
CHUNKS = plan_chunks(SLIDE_IDS, L.chunk_registry, CFG.chunk_size())
_HOLDOUT = set(HOLDOUT_IDS)
CAPTION_CHUNKS = {c: [s for s in m if s not in _HOLDOUT] for c, m in CHUNKS.items()}
CAPTION_CHUNKS = {c: m for c, m in CAPTION_CHUNKS.items() if m}


wildcard_constraints:
    slide=SLIDE_ID_PATTERN,
    chunk=r"chunk_\d{5}",


# In DAG order: a rule refers to its upstream rule's outputs as rules.<name>.output.
include: "rules/common.smk"
include: "rules/demo.smk"
include: "rules/tiling.smk"
include: "rules/features.smk"
include: "rules/selection.smk"
include: "rules/captioning.smk"
include: "rules/dataset.smk"
include: "rules/mil.smk"
include: "rules/training.smk"
include: "rules/zeroshot.smk"
include: "rules/instruct.smk"
include: "rules/agents.smk"
include: "rules/report.smk"


# Light aggregates run on the submitting node. The `localrules:` directive takes only literal
# names, and this list is configurable (cluster.local_rules), hence the API call.
localrules:
    all,


workflow.localrules(*CFG.cluster.local_rules)


rule all:
    default_target: True
    input:
        # every final output, from the rules this config defines (rules/common.smk)
        final_targets,
