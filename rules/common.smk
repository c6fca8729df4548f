# Helpers shared by all rule files.
import os as _os

# Rule scripts may run in conda envs (envs/*.yaml, `--sdm conda`) that do not have this checkout
# installed: put it on PYTHONPATH. Jobs inherit it (SLURM ones through sbatch --export=ALL).
_pp = _os.environ.get("PYTHONPATH", "").split(_os.pathsep)
if workflow.basedir not in _pp:
    _os.environ.update(PYTHONPATH=_os.pathsep.join([workflow.basedir] + [p for p in _pp if p]))


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
