# pathgen workflow: slides -> tiles -> features -> selection -> captions -> dataset
# -> CLIP training -> zero-shot + MIL benchmarks -> report.
# All logic lives in the `pathgen` package; rules are thin and call workflow_scripts/.
import gc
import sys

from snakemake.common.configfile import load_configfile
from snakemake.utils import min_version

from pathgen.runner.chunks import plan_chunks
from pathgen.config import resolve_config
from pathgen.config.layers import snakemake_layers
from pathgen.paths import Layout
from pathgen.run_record import write_run_record
from pathgen.cohort import SLIDE_ID_PATTERN, list_slides

min_version("9.27.1")


configfile: "config.yaml"


# The run's config, one semantics with the CLI (pathgen/config/layers.py): built-in defaults
# (the real-data ones) < the demo overlay (only while the demo is the slide source) <
# config.yaml < each --configfile < --config; validated, each value's source known.
RUN = resolve_config(
    snakemake_layers(
        None if workflow.config_settings.replace_workflow_config else "config.yaml",
        workflow.config_settings.configfiles,
        workflow.config_settings.config,
        merged=config,
        load=load_configfile,
    )
)
CFG = RUN.config
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


# Every run that executes jobs records its effective config (<results_dir>/run_config.yaml),
# which `pathgen status|doctor|report|export` then read by default.
onstart:
    write_run_record(RUN, L.run_config, Layout.last_run_pointer(), sys.argv)


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


# A 30k-slide run's DAG is ~0.5 M Python objects, and every full collection of the cyclic GC
# rescans all live objects, the parse-time ones too (the slides, chunks, config and rules,
# which live as long as the run). Freeze those and collect the young generation less often:
# `snakemake -n` at 30k slides spends ~1.2 s less CPU (of ~8; bench/dag.py). Nothing else
# changes: frozen objects are only never collected as cycles, and the parse-time ones stay.
gc.freeze()
gc.set_threshold(20_000, 10, 10)
