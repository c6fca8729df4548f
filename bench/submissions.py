"""How many SLURM submissions `snakemake --profile slurm` makes for N slides, and what each asks for.

Runs the real Snakefile as a dry run with the repo's SLURM profile (slurm/config.yaml) over N
empty fake slides, in-process, recording every job the scheduler hands to the executor: a
group job (cluster.groups / cluster.group_components) is ONE sbatch; rules in
cluster.local_rules run on the submitting node and are not submissions. Prints the count per
rule/group and the resources (-> sbatch --cpus-per-task/--mem/--gpus/-t) of each kind.
Target: <= 40 submissions for 1000 slides.

    .venv/bin/python bench/submissions.py --slides 1000 [--set cluster.group_components.slide=25]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import os
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "slurm"))

from workspace import fake_slide_workspace  # noqa: E402


def record_dry_run(workdir: Path, extra: list[str]) -> list[dict]:
    """Dry-run the workflow with the SLURM profile; return one dict per scheduled job."""
    from snakemake.cli import main as snakemake_main
    from snakemake.executors import dryrun

    jobs: list[dict] = []
    original = dryrun.Executor.run_job

    def run_job(self, job):
        res = dict(job.resources)
        jobs.append(dict(
            group=job.is_group(),
            name=job.groupid if job.is_group() else job.rule.name,
            n_jobs=len(list(job.jobs)) if job.is_group() else 1,
            # what the SLURM executor would run locally (the dry-run executor itself is local)
            local=(not job.is_group()) and (job.rule.name in self.workflow._localrules
                                            or job.rule.norun),
            threads=res.get("_cores", getattr(job, "threads", 1)),
            mem_mb=res.get("mem_mb"), gpu=res.get("gpu", 0), runtime=res.get("runtime")))
        return original(self, job)

    argv = ["-s", str(REPO / "Snakefile"), "--directory", str(workdir),
            "--profile", str(REPO / "slurm"), "-n", "--quiet", "all", *extra]
    dryrun.Executor.run_job = run_job
    cwd = os.getcwd()
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            try:
                snakemake_main(argv)
            except SystemExit as exc:
                if exc.code not in (0, None):
                    raise RuntimeError(f"dry run failed:\n{log.getvalue()[-6000:]}") from None
    finally:
        dryrun.Executor.run_job = original
        os.chdir(cwd)
    return jobs


def summarise(jobs: list[dict]) -> tuple[int, list[str]]:
    submitted = [j for j in jobs if not j["local"]]
    kinds = collections.defaultdict(list)
    for j in jobs:
        kinds[(j["name"], j["group"], j["local"])].append(j)
    lines = [f"{'rule/group':<22} {'kind':<6} {'count':>6} {'jobs/sub':>9} {'cpus':>5} "
             f"{'mem_mb':>8} {'gpus':>5} {'runtime':>8}"]
    for (name, group, local), js in sorted(kinds.items()):
        j = max(js, key=lambda x: x["n_jobs"])
        kind = "local" if local else ("group" if group else "job")
        lines.append(f"{name:<22} {kind:<6} {len(js):>6} {j['n_jobs']:>9} {j['threads']!s:>5} "
                     f"{j['mem_mb']!s:>8} {j['gpu']!s:>5} {j['runtime']!s:>8}")
    return len(submitted), lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slides", type=int, default=1000)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for the fake workspace, e.g. cluster.group_components.slide=25")
    ap.add_argument("--target", type=int, default=40, help="exit 1 when submissions exceed this")
    ap.add_argument("snakemake_args", nargs="*", help="extra snakemake arguments (after --)")
    args = ap.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="pathgen-subs-"))
    try:
        updates: dict = {}
        for item in args.overrides:
            key, _, value = item.partition("=")
            cur = updates
            *parents, last = key.split(".")
            for p in parents:
                cur = cur.setdefault(p, {})
            cur[last] = yaml.safe_load(value)
        ws = fake_slide_workspace(root, args.slides, **updates)
        jobs = record_dry_run(ws.root, args.snakemake_args)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    n_sub, lines = summarise(jobs)
    n_rule_jobs = sum(j["n_jobs"] for j in jobs)
    print(f"{args.slides} slides: {n_rule_jobs} rule jobs -> {n_sub} SLURM submissions "
          f"({sum(1 for j in jobs if j['local'])} local)")
    print("\n".join(lines))
    return 0 if n_sub <= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
