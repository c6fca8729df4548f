"""`python pathgen_testkit/fake_slurm/run_snakemake.py <snakemake args>`: Snakemake's own CLI
(snakemake.cli.main) with one change, for bench/submissions.py.

Jobs that Snakemake runs on the submitting node (rules in cluster.local_rules -> localrules,
and rules without a body such as `all`) are not submissions, but their scripts would run here
on the fake cluster's empty outputs and fail. So the local executor only creates their
declared output, log and benchmark files (empty) and appends "<rule>\\t<wildcards>" to
$FAKE_SLURM_STATE/local.tsv.
Everything that goes to SLURM goes through the unmodified snakemake-executor-plugin-slurm,
i.e. the real `sbatch` command lines (to the fake `sbatch` first on PATH).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def _patch_local_executor() -> None:
    from snakemake.executors import local
    from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo

    log = Path(os.environ["FAKE_SLURM_STATE"]) / "local.tsv"

    def run_job(self, job):
        members = list(job) if job.is_group() else [job]
        for j in members:
            files = list(j.output) + list(j.log) + ([j.benchmark] if j.benchmark else [])
            for f in files:
                p = Path(f)
                p.parent.mkdir(parents=True, exist_ok=True)
                p.touch()
            wc = ",".join(f"{k}={v}" for k, v in sorted(dict(j.wildcards_dict).items()))
            with open(log, "a") as fh:
                fh.write(f"{j.rule.name}\t{wc}\n")
        info = SubmittedJobInfo(job=job)
        self.report_job_submission(info)
        self.report_job_success(info)

    local.Executor.run_job = run_job


if __name__ == "__main__":
    _patch_local_executor()
    from snakemake.cli import main

    sys.argv[0] = "snakemake"
    main(sys.argv[1:])
