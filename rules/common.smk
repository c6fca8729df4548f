# Helpers shared by all rule files.
from pathgen.workflow_env import put_checkout_on_pythonpath

put_checkout_on_pythonpath(workflow.basedir)


def res(rule_name):
    """Resources of a rule from config `resources` (falls back to `resources.default`)."""
    r = CFG.rule_resources(rule_name)
    out = dict(mem_mb=r.mem_mb, runtime=r.runtime)
    if r.gpu:
        out["gpu"] = r.gpu
    if r.gpu_model:
        out["gpu_model"] = r.gpu_model
    if r.slurm_partition:
        out["slurm_partition"] = r.slurm_partition
    if r.cpus_per_task:
        out["cpus_per_task"] = r.cpus_per_task
    # Light aggregates listed in cluster.local_rules run on the submitting node (localrules).
    if rule_name in CFG.cluster.local_rules:
        workflow.localrules(rule_name)
    return out


def threads_of(rule_name):
    return CFG.rule_resources(rule_name).threads


def slide_path(wildcards):
    return str(SLIDES[wildcards.slide].path)
