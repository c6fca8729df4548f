"""Snakemake script for rule agents_train (logic: pathgen.agents.stage.train_stage).

params: the build-data folder, the agent's run folder and agents.train (its rerun trigger).
On a local run it first claims a free GPU (pathgen.gpu_slots), before torch/transformers."""

from pathgen.gpu_slots import job_gpus
from pathgen.logs import setup_logging

sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
with job_gpus(sm, sm.params.settings["device"]):
    from pathgen.agents.stage import train_stage
    from pathgen.config.agents import AgentsTrainConfig

    # The rule reruns when its settings or data change: checkpoints of the old settings are then
    # discarded (restart); a killed job with unchanged settings resumes from its last checkpoint.
    summary = train_stage(sm.params.data_dir, sm.wildcards.agent, sm.params.run_dir,
                          AgentsTrainConfig.model_validate(sm.params.settings), restart=True)
if not summary.get("model"):
    raise RuntimeError(f"agents_train {sm.wildcards.agent}: training stopped at step {summary['step']} "
                       "without an exported model")
