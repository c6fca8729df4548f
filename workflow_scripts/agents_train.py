"""Snakemake script for rule agents_train (logic: pathgen.agents.stage.train_stage)."""

from pathgen.agents.stage import train_stage
from pathgen.config import validate_config
from pathgen.logs import setup_logging
from pathgen.paths import Layout

sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
cfg = validate_config(sm.config)
L = Layout(cfg)
# The rule reruns when its settings or data change: checkpoints of the old settings are then
# discarded (restart); a killed job with unchanged settings resumes from its last checkpoint.
summary = train_stage(sm.params.data_dir, sm.wildcards.agent, L.agents_run_dir(sm.wildcards.agent),
                      cfg.agents.train, restart=True)
if not summary.get("model"):
    raise RuntimeError(f"agents_train {sm.wildcards.agent}: training stopped at step {summary['step']} "
                       "without an exported model")
