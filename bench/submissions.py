"""What `snakemake --profile slurm` submits to SLURM for N slides: the real sbatch command lines.

For each N (default 1000 and 10000) the bench makes a workspace over N EMPTY .svs files
(pathgen_testkit/workspace.py fake_slide_workspace: demo disabled; cluster.chunk_size=64 set
explicitly - the repo's config.yaml says 5 for the demo -, cluster.gpu_partition=gpu,
cluster.cpu_partition=cpu, captioning.backend=openai, i.e. a real cohort with a model server;
everything else the code defaults; `--set KEY=VALUE` overrides) and runs the whole workflow,
start to end, through the real submission path:

  1. `snakemake -n all` lists every job with its declared output, log and benchmark files;
     they go to targets.json for the fake cluster (nothing else is taken from the dry run).
  2. `snakemake --profile <repo>/slurm all` - Snakemake's CLI with the repo's profile as it
     is now (executor slurm, jobs, retries, keep-going, default-resources, status command,
     any groups, ...) and the unmodified snakemake-executor-plugin-slurm - with
     pathgen_testkit/fake_slurm/ first on PATH. The plugin builds every sbatch command line itself and
     runs it; the fake `sbatch` appends the full argv (+ the jobstep script when it comes on
     stdin) to sbatch.jsonl, creates the empty declared files of the job's `--target-jobs`
     (all members of a group job or job array) and prints a job id; the fake `squeue`/`sacct`
     then report it COMPLETED, so Snakemake submits the next wave, up to the final target:
     EVERY submission of a fresh run is recorded, not only the first wave. `sinfo` lists the
     partitions cpu* (default) and gpu; `scontrol show config` answers at once (MinJobAge
     300 s), so the plugin's start-up probes cost nothing.
     Two things differ from a real run, neither touches an sbatch argument: the command line
     adds `--slurm-init-seconds-before-status-checks 1` (instead of the profile's wait before
     each status poll), and jobs Snakemake runs on the submitting node (cluster.local_rules,
     and `all`) only get their files created instead of running their scripts on empty
     inputs (pathgen_testkit/fake_slurm/run_snakemake.py).
  Extra snakemake arguments after `--` go to both calls (e.g. `-- --slurm-array-jobs tile`).

Per N it reports: jobs (Snakemake's own "Job stats" total of that run, local jobs and `all`
included), submissions (= sbatch calls), the largest requested walltime (-t, minutes), and per
rule (per rule set for a grouped submission): submissions, targets per submission and the
exact resource arguments: --mem, --cpus-per-task (or --cpus-per-gpu), --gpus/--gres, -p, -t
("a|b" = the distinct values among its submissions, "a-b" the range when more than two), then
the GPU-requesting submissions by rule.
It prints a FAIL line and exits 1 when a submission asks for more than 1 GPU or for more
walltime than cluster.max_job_minutes, when tile, select_patches, caption (openai backend) or
build_report request a GPU, when sbatch rejected a submission or some job was neither
submitted nor run locally, or when the run did not finish.

    .venv/bin/python bench/submissions.py [--slides 1000 10000] [--set cluster.max_job_minutes=600]

Ends with: submissions: slides=N jobs=J submissions=S max_walltime_min=M   (largest N).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from pathgen_testkit.fake_slurm import BIN as FAKE
from pathgen_testkit.fake_slurm.fakeslurm import spec_key
from pathgen_testkit.workspace import fake_slide_workspace, merge_config, parse_job_counts

REPO = Path(__file__).resolve().parents[1]

# The bench's cohort config (a real-slide run on a cluster with a model server).
BASE_CONFIG = {"cluster": {"chunk_size": 64, "gpu_partition": "gpu", "cpu_partition": "cpu"},
               "captioning": {"backend": "openai"}}
NO_GPU_RULES = ("tile", "select_patches", "caption", "build_report")


def parse_dry_run(text: str, root: Path) -> list[dict]:
    """Jobs of a non-quiet `snakemake -n`: rule, wildcards, declared outputs, resources;
    `files` = outputs + log + benchmark (Snakemake checks the benchmark file after a job)."""
    jobs: list[dict] = []
    cur = None
    for line in text.splitlines():
        m = re.match(r"\s*(?:local)?(?:rule|checkpoint) (\w+):\s*$", line)
        if m:
            cur = {"rule": m.group(1), "wildcards": {}, "output": [], "files": [], "resources": {}}
            jobs.append(cur)
            continue
        if cur is None:
            continue
        s = line.strip()
        key, _, val = s.partition(": ")
        if key in ("output", "log", "benchmark"):
            paths = [str(root / p) for p in val.split(", ") if p]
            cur["files"] += paths
            if key == "output":
                cur["output"] = paths
        elif key == "wildcards":
            cur["wildcards"] = dict(kv.split("=", 1) for kv in val.split(", ") if "=" in kv)
        elif key == "resources":
            cur["resources"] = dict(kv.split("=", 1) for kv in val.split(", ") if "=" in kv)
    for j in jobs:
        wc = ",".join(f"{k}={v}" for k, v in sorted(j["wildcards"].items()))
        j["key"] = spec_key(f"{j['rule']}:{wc}")
    return jobs


def minutes(t: str) -> float:
    """sbatch --time value -> minutes ("M", "M:S", "H:M:S", "D-H", "D-H:M", "D-H:M:S")."""
    days, _, rest = t.rpartition("-") if "-" in t else ("", "", t)
    parts = [int(p) for p in rest.split(":")]
    if days:
        h, m, s = (parts + [0, 0])[:3]
        return int(days) * 1440 + h * 60 + m + s / 60
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        return parts[0] + parts[1] / 60
    return parts[0] * 60 + parts[1] + parts[2] / 60


def sbatch_resources(argv: list[str]) -> dict:
    """The resource arguments of one sbatch argv (as the shell split the plugin's command)."""
    out = {"mem": None, "cpus": None, "gpus": [], "p": None, "t": None}
    it = iter(range(len(argv)))
    for i in it:
        a = argv[i]
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if a in ("--mem", "--mem-per-cpu"):
            out["mem"] = nxt if a == "--mem" else f"{nxt}/cpu"
        elif a.startswith(("--mem=", "--mem-per-cpu=")):
            k, v = a.split("=", 1)
            out["mem"] = v if k == "--mem" else f"{v}/cpu"
        elif a.startswith(("--cpus-per-task=", "--cpus-per-gpu=")):
            k, v = a.split("=", 1)
            out["cpus"] = v if k == "--cpus-per-task" else f"{v}/gpu"
        elif a in ("--cpus-per-task", "-c"):
            out["cpus"] = nxt
        elif a.startswith(("--gpus=", "--gres=")) or a in ("--gpus", "--gres", "-G"):
            val = a.split("=", 1)[1] if "=" in a else nxt
            out["gpus"].append(("--gres=" if a.startswith("--gres") else "--gpus=") + val)
        elif a in ("-p", "--partition"):
            out["p"] = nxt
        elif a.startswith("--partition="):
            out["p"] = a.split("=", 1)[1]
        elif a in ("-t", "--time"):
            out["t"] = minutes(nxt)
        elif a.startswith("--time="):
            out["t"] = minutes(a.split("=", 1)[1])
    n = 0
    for g in out["gpus"]:
        flag, val = g.split("=", 1)
        for item in val.split(","):
            fields = item.split(":")
            if flag == "--gpus":
                n += int(fields[-1]) if fields[-1].isdigit() else 1
            elif fields[0] == "gpu":
                n += int(fields[-1]) if len(fields) > 1 and fields[-1].isdigit() else 1
    out["n_gpus"] = n
    return out


def clean_env(state: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "SNAKEMAKE_SLURM", "SNAKEMAKE_PROFILE"))}
    env.update(PATH=f"{FAKE}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}"
                    f"{os.environ.get('PATH', '')}",
               FAKE_SLURM_STATE=str(state), PYTHONUNBUFFERED="1")
    return env


def run_one(n: int, overrides: dict, extra: list[str], timeout: float, keep: bool) -> dict:
    root = Path(tempfile.mkdtemp(prefix=f"pathgen-subs-{n}-"))
    try:
        updates = json.loads(json.dumps(BASE_CONFIG))
        merge_config(updates, overrides)
        ws = fake_slide_workspace(root, n, **updates)
        from pathgen.config import validate_config

        cfg = validate_config(yaml.safe_load(ws.config_path.read_text()), str(ws.config_path))
        state = root / "fake_slurm"
        state.mkdir()
        env = clean_env(state)
        t0 = time.perf_counter()
        dry = ws.snakemake("-n", "all", *extra, timeout=timeout, env=env)
        jobs = parse_dry_run(dry.stdout + dry.stderr, root)
        (state / "targets.json").write_text(json.dumps({j["key"]: j["files"] for j in jobs}))
        t1 = time.perf_counter()
        cmd = ["timeout", "-k", "15", str(int(timeout)), sys.executable,
               str(FAKE / "run_snakemake.py"), "-s", str(REPO / "Snakefile"),
               "--directory", str(root), "--profile", str(REPO / "slurm"),
               "--slurm-init-seconds-before-status-checks", "1", "all", *extra]
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env)
        t2 = time.perf_counter()
        log = proc.stdout + proc.stderr

        def lines(name):
            p = state / name
            return p.read_text().splitlines() if p.exists() else []

        subs = [json.loads(x) for x in lines("sbatch.jsonl")]
        rejected = [json.loads(x) for x in lines("rejected.jsonl")]
        local = collections.Counter(x.split("\t")[0] for x in lines("local.tsv"))
        local_keys = [spec_key(f"{r}:{w}")
                      for r, _, w in (x.partition("\t") for x in lines("local.tsv"))]
        if keep:
            (root / "snakemake.out").write_text(log)
        return dict(n=n, cfg=cfg, jobs=jobs, subs=subs, rejected=rejected, local=local,
                    local_keys=local_keys, rc=proc.returncode, log=log,
                    stats=parse_job_counts(log), dry_s=t1 - t0, run_s=t2 - t1, root=root)
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def rng(values) -> str:
    vals = sorted({v for v in values if v is not None}, key=lambda v: (isinstance(v, str), v))
    if not vals:
        return "-"
    fmt = [f"{v:g}" if isinstance(v, float) else str(v) for v in vals]
    if all(isinstance(v, (int, float)) for v in vals) and len(vals) > 2:
        return f"{fmt[0]}-{fmt[-1]}"
    return "|".join(fmt)


def report(r: dict) -> tuple[list[str], list[str], dict]:
    """(table lines, FAIL lines, summary numbers) of one run."""
    fails: list[str] = []
    n, cfg, subs = r["n"], r["cfg"], r["subs"]
    cap = cfg.cluster.max_job_minutes
    by_kind: dict[str, list[dict]] = collections.defaultdict(list)
    submitted_keys: list[str] = []
    bad: dict[tuple[str, str], list[str]] = collections.defaultdict(list)  # (kind, why) -> eg
    for s in subs:
        res = sbatch_resources(s["argv"])
        keys = [k for ts in s["targets"] for k in ts]
        submitted_keys += keys
        rules = sorted({k.split(":", 1)[0] for k in keys})
        kind = "+".join(rules)
        by_kind[kind].append({**res, "targets": len(keys), "rules": rules, "id": s["id"]})
        if res["n_gpus"] > 1:
            bad[kind, "request more than 1 GPU"].append(
                f"sbatch job {s['id']}: {' '.join(res['gpus'])}, {len(keys)} target jobs")
        if res["t"] is None:
            bad[kind, "have no walltime (-t)"].append(f"sbatch job {s['id']}")
        elif res["t"] > cap:
            bad[kind, f"request more walltime than cluster.max_job_minutes={cap}"].append(
                f"sbatch job {s['id']}: -t {res['t']:g}")
        no_gpu = [x for x in rules if x in NO_GPU_RULES
                  and (x != "caption" or cfg.captioning.backend == "openai")]
        if res["n_gpus"] and no_gpu:
            bad[kind, f"request a GPU for {','.join(no_gpu)}"].append(
                f"sbatch job {s['id']}: {' '.join(res['gpus'])}")
    for (kind, why), eg in bad.items():
        fails.append(f"FAIL slides={n}: {len(eg)} {kind} submission(s) {why}, e.g. {eg[0]}")
    for j in r["jobs"]:  # local rules cannot pass a GPU to sbatch, but they must not ask either
        if j["rule"] in NO_GPU_RULES and j["key"] in r["local_keys"] and \
                int(j["resources"].get("gpu", 0) or 0) > 0:
            fails.append(f"FAIL slides={n}: local {j['rule']} asks for gpu={j['resources']['gpu']}")
    for x in r["rejected"]:
        fails.append(f"FAIL slides={n}: sbatch rejected (unknown targets): {x['targets']}")
    expected = collections.Counter(j["key"] for j in r["jobs"])
    done = collections.Counter(submitted_keys) + collections.Counter(r["local_keys"])
    missing = expected - done
    twice = [k for k, c in done.items() if c > 1]
    if missing:
        fails.append(f"FAIL slides={n}: {sum(missing.values())} jobs neither submitted nor run "
                     f"locally, e.g. {sorted(missing)[:3]}")
    if twice:
        fails.append(f"FAIL slides={n}: {len(twice)} jobs submitted more than once, "
                     f"e.g. {twice[:3]}")
    if r["rc"] != 0:
        tail = " | ".join(r["log"].strip().splitlines()[-6:])
        fails.append(f"FAIL slides={n}: snakemake --profile slurm exited {r['rc']}: {tail[-600:]}")

    n_jobs = sum(r["stats"].values()) if r["stats"] else len(r["jobs"])
    walls = [x["t"] for xs in by_kind.values() for x in xs if x["t"] is not None]
    max_wall = max(walls) if walls else 0
    local = ", ".join(f"{k}={v}" for k, v in sorted(r["local"].items())) or "none"
    out = [f"slides={n} chunk_size={cfg.chunk_size()}: jobs={n_jobs} submissions={len(subs)} "
           f"max_walltime_min={max_wall:g} (local: {local}; dry run {r['dry_s']:.0f} s, "
           f"run {r['run_s']:.0f} s)",
           ]
    rows = [["rule", "subs", "tgt/sub", "--mem", "cpus", "gpus", "-p", "-t (min)"]]
    gpu_by_rule = collections.Counter()
    # rows in the order of each kind's first sbatch
    for kind, xs in sorted(by_kind.items(), key=lambda kv: min(x["id"] for x in kv[1])):
        rows.append([kind, str(len(xs)), rng(x["targets"] for x in xs), rng(x["mem"] for x in xs),
                     rng(x["cpus"] for x in xs), rng(" ".join(x["gpus"]) or None for x in xs),
                     rng(x["p"] for x in xs), rng(x["t"] for x in xs)])
        gpu_by_rule[kind] += sum(1 for x in xs if x["n_gpus"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.append("  " + "  ".join(c.rjust(w) if 0 < i < 3 else c.ljust(w)
                                    for i, (c, w) in enumerate(zip(row, widths))).rstrip())
    gpu = ", ".join(f"{k}={v}" for k, v in gpu_by_rule.items() if v) or "none"
    out.append(f"  GPU-requesting submissions by rule: {gpu}")
    return out, fails, dict(jobs=n_jobs, subs=len(subs), wall=max_wall)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slides", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for the workspace, e.g. cluster.max_job_minutes=600")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per snakemake call")
    ap.add_argument("--keep", action="store_true",
                    help="keep the workspaces (their paths are printed)")
    ap.add_argument("snakemake_args", nargs="*", help="extra snakemake arguments (after --)")
    args = ap.parse_args(argv)
    overrides: dict = {}
    for item in args.overrides:
        key, _, value = item.partition("=")
        cur = overrides
        *parents, last = key.split(".")
        for p in parents:
            cur = cur.setdefault(p, {})
        cur[last] = yaml.safe_load(value)

    all_fails: list[str] = []
    summary = {}
    for n in sorted(args.slides):
        r = run_one(n, overrides, args.snakemake_args, args.timeout, args.keep)
        lines, fails, summary = report(r)
        print("\n".join(lines), flush=True)
        if args.keep:
            print(f"  workspace: {r['root']} (sbatch log: fake_slurm/sbatch.jsonl)")
        all_fails += fails
    for f in all_fails:
        print(f)
    print(f"submissions: slides={max(args.slides)} jobs={summary['jobs']} "
          f"submissions={summary['subs']} max_walltime_min={summary['wall']:g}")
    return 1 if all_fails else 0


if __name__ == "__main__":
    sys.exit(main())
