"""How long Snakemake takes to plan pathgen on big slide sets, fresh and on a real second run.

For each N (default 1000 and 10000) the bench makes N EMPTY .svs files (slide listing never
opens them) and measures, each as a separate `python -m snakemake` process in the same run:

pathgen (the checkout's Snakefile; workspace = pathgen_testkit/workspace.py fake_slide_workspace:
demo disabled, slides.dir = the fake slides, cluster.chunk_size=64 set explicitly, i.e. the
code default for real slides - the repo's config.yaml says 5 for the demo; everything else
the code defaults):
  fresh   `snakemake -n --quiet rules` with nothing present (no results/, no chunks.tsv, no
          .snakemake/): start-up + Snakefile parse (validate_config, list_slides,
          plan_chunks, which writes chunks.tsv) + the DAG of every job. J = its job count.
  rerun   the same dry run on a REAL second-run state, made like this:
            1. `snakemake -n -F` lists every job's declared outputs; each is created (empty);
            2. `snakemake --touch -F --cores 64` "runs" every job with Snakemake's touch
               executor. It touches the outputs in execution order AND goes through the normal
               job post-processing, which calls persistence.finished(): the .snakemake/metadata
               record of every output (rule, code hash, params, input list + checksums, log,
               conda env, software-stack hash) is written by Snakemake itself, exactly as after
               a real run (Snakemake 9.27.1 executors/touch.py + jobs.py Job.postprocess);
          the bench checks that every output has a metadata record, then times the dry run.
          (Step 2 is most of the bench's wall time: the touch executor sleeps 0.1 s per job
          and Snakemake's scheduler re-checks the inputs of every waiting job after each one:
          with --cores 1 that was ~3 min at 10k slides and ~1 h at 30k, 64 at once ~6 min.)
          It measures what a rerun of an up-to-date workflow costs: the DAG plus, per job,
          the existence/mtime checks and every rerun trigger (mtime, params, input, code,
          software-env) against the stored records. The dry run must schedule nothing
          (the bench prints the scheduled jobs and fails otherwise). What it does not
          include: the per-slide files the chunk jobs write beside their outcome JSON
          (logs, state records, HDF5s): Snakemake never looks at undeclared files.
  parse   `snakemake --list-rules` (start-up + Snakefile parse, no DAG), run after fresh.
  and, in-process, validate_config / list_slides / plan_chunks (registry present) alone.

bare (a generated Snakefile, no pathgen code, files made with `touch`; fresh `-n` only):
  bare_per_slide  today's OLD per-slide shape: tile, extract_features, select_patches,
                  caption with a {slide} wildcard (slides found by os.scandir), then
                  build_dataset (all captions), train, report (every per-slide output), all:
                  4N+4 jobs. Its fresh dry run is Z.
  bare_chunked    the same stages, one job per 64-slide chunk (inputs by input function):
                  the shape pathgen has now, without pathgen's code (reference only).

SLURM-client probe caveat: with SLURM client tools on PATH but no controller running (a
login node during an outage, a laptop with slurm-client installed), snakemake-executor-plugin-
slurm 2.8.0 runs `scontrol show config` (up to its 10 s timeout; ~9 s reported) while
it is IMPORTED: the help text of its status_command setting is computed at class definition
(_get_status_command_help -> should_recommend_squeue_status_command -> get_min_job_age), and
Snakemake's CLI imports every installed executor plugin to build its argument parser. So a
plain `snakemake -n` WITHOUT `--executor slurm` pays it too. The bench verifies this with
stub sinfo/squeue/sacct/scontrol on PATH (the stub scontrol logs its call and sleeps
--probe-sleep s): it prints how many scontrol calls and how many extra seconds a plain
`snakemake -n` and a `snakemake --executor slurm -n` cost. The numbers above are measured
without SLURM tools on PATH (none are installed here); where they are, expect +~9 s per
snakemake start unless slurmctld answers (or sinfo is not on PATH for the dry runs).

    .venv/bin/python bench/dag.py [--slides 1000 10000] [--workdir DIR] [--no-bare-chunked]

Ends with: dag: slides=N jobs=J fresh_s=X rerun_s=Y bare_per_slide_s=Z   (largest N).
Goal on the shared 2-core machine: X <= 10 and Y <= 10 at 30k slides (--slides 30000).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from pathgen_testkit.workspace import SNAKEMAKE, fake_slide_workspace, make_touched_state, parse_job_counts

CHUNK_SIZE = 64
# Jobs `snakemake --touch` runs at once when it makes the second-run state (the touch executor
# does no work; with --cores 1 the scheduler's per-job rescans made it ~1 h at 30k slides).
TOUCH_CORES = 64

# ---------------------------------------------------------------------------------------------
# bare Snakefiles (no pathgen code)

_BARE_HEAD = '''
import os

SLIDE_DIR = config["slides_dir"]
SLIDES = sorted(e.name[:-4] for e in os.scandir(SLIDE_DIR) if e.name.endswith(".svs"))
SETTINGS = {"patch_size_um": 256, "target_mpp": 0.5, "tissue_threshold": 0.5}

wildcard_constraints:
    slide=r"[A-Za-z0-9][A-Za-z0-9._-]*",
    chunk=r"chunk_\\d{5}",

DATASET = ["results/dataset/open_clip.csv", "results/dataset/dataset_card.json"]
'''

_BARE_TAIL = '''
rule build_dataset:
    input: CAPTIONS
    output: DATASET
    resources: mem_mb=8000, runtime=120
    shell: "touch {output}"

rule train:
    input: DATASET
    output: "results/training/final.pt"
    resources: mem_mb=32000, runtime=600
    shell: "touch {output}"

rule report:
    input: PER_SLIDE, DATASET, "results/training/final.pt"
    output: "results/report/summary.html"
    shell: "touch {output}"
'''

BARE_PER_SLIDE = _BARE_HEAD + '''
rule all:
    input: "results/report/summary.html"

rule tile:
    input: os.path.join(SLIDE_DIR, "{slide}.svs")
    output: coords="results/tiles/{slide}.h5", qc="results/tiles/{slide}.qc.jpg",
            contours="results/tiles/{slide}.geojson"
    params: settings=SETTINGS
    log: "results/logs/tile/{slide}.log"
    resources: mem_mb=4000, runtime=30
    shell: "touch {output}"

rule extract_features:
    input: "results/tiles/{slide}.h5"
    output: "results/features/{slide}.h5"
    params: settings=SETTINGS
    log: "results/logs/extract_features/{slide}.log"
    resources: mem_mb=16000, runtime=60
    shell: "touch {output}"

rule select_patches:
    input: "results/features/{slide}.h5"
    output: "results/selection/{slide}.json"
    params: settings=SETTINGS
    log: "results/logs/select_patches/{slide}.log"
    resources: mem_mb=8000, runtime=20
    shell: "touch {output}"

rule caption:
    input: "results/selection/{slide}.json"
    output: "results/captions/{slide}.jsonl"
    params: settings=SETTINGS
    log: "results/logs/caption/{slide}.log"
    resources: mem_mb=8000, runtime=120
    shell: "touch {output}"

CAPTIONS = expand("results/captions/{slide}.jsonl", slide=SLIDES)
PER_SLIDE = (expand("results/tiles/{slide}.{ext}", slide=SLIDES, ext=["h5", "qc.jpg", "geojson"])
             + expand("results/features/{slide}.h5", slide=SLIDES)
             + expand("results/selection/{slide}.json", slide=SLIDES) + CAPTIONS)
''' + _BARE_TAIL

BARE_CHUNKED = _BARE_HEAD + '''
SIZE = int(config.get("chunk_size", 64))
CHUNKS = {f"chunk_{i // SIZE:05d}": SLIDES[i:i + SIZE] for i in range(0, len(SLIDES), SIZE)}

rule all:
    input: "results/report/summary.html"

def chunk_slides(wc):
    return [os.path.join(SLIDE_DIR, s + ".svs") for s in CHUNKS[wc.chunk]]

def members(wc):
    return CHUNKS[wc.chunk]

rule tile:
    input: chunk_slides
    output: "results/tiles/chunks/{chunk}.json"
    params: members=members, settings=SETTINGS
    log: "results/logs/tile/{chunk}.log"
    resources: mem_mb=4000, runtime=lambda wc: 30 * len(CHUNKS[wc.chunk])
    shell: "touch {output}"

rule extract_features:
    input: "results/tiles/chunks/{chunk}.json"
    output: "results/features/chunks/{chunk}.json"
    params: members=members, settings=SETTINGS
    log: "results/logs/extract_features/{chunk}.log"
    resources: mem_mb=16000, runtime=lambda wc: 60 * len(CHUNKS[wc.chunk])
    shell: "touch {output}"

rule select_patches:
    input: "results/features/chunks/{chunk}.json"
    output: "results/selection/chunks/{chunk}.json"
    params: members=members, settings=SETTINGS
    log: "results/logs/select_patches/{chunk}.log"
    resources: mem_mb=8000, runtime=lambda wc: 20 * len(CHUNKS[wc.chunk])
    shell: "touch {output}"

rule caption:
    input: "results/selection/chunks/{chunk}.json"
    output: "results/captions/chunks/{chunk}.json"
    params: members=members, settings=SETTINGS
    log: "results/logs/caption/{chunk}.log"
    resources: mem_mb=8000, runtime=lambda wc: min(1440, 120 * len(CHUNKS[wc.chunk]))
    shell: "touch {output}"

CAPTIONS = expand("results/captions/chunks/{chunk}.json", chunk=CHUNKS)
PER_SLIDE = [f"results/{d}/chunks/{c}.json" for d in ("tiles", "features", "selection")
             for c in CHUNKS] + CAPTIONS
''' + _BARE_TAIL


def snakemake_in(root: Path, snakefile: Path, *args: str, timeout: float,
                 env: dict | None = None) -> tuple[subprocess.CompletedProcess, float]:
    cmd = ["timeout", "-k", "15", str(int(timeout))] + SNAKEMAKE + [
        "-s", str(snakefile), "--directory", str(root), *args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed (rc {proc.returncode}):\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc, dt


def measure_bare(n: int, root: Path, source: str, timeout: float) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    slides = root / "slides"
    slides.mkdir(exist_ok=True)
    for i in range(n):
        (slides / f"TCGA-FAKE-{i:05d}.svs").touch()
    snakefile = root / "Snakefile"
    snakefile.write_text(textwrap.dedent(source))
    proc, dt = snakemake_in(root, snakefile, "-n", "--quiet", "rules", "--config",
                            f"slides_dir={slides}", f"chunk_size={CHUNK_SIZE}", timeout=timeout)
    return dict(fresh_s=dt, jobs=sum(parse_job_counts(proc.stdout + proc.stderr).values()))


# ---------------------------------------------------------------------------------------------
# pathgen


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def parse_breakdown(ws) -> dict:
    """In-process costs of the Snakefile's own code (after the fresh run wrote chunks.tsv)."""
    import yaml

    from pathgen.runner.chunks import plan_chunks
    from pathgen.config import validate_config
    from pathgen.paths import Layout
    from pathgen.cohort import list_slides

    data = yaml.safe_load(ws.config_path.read_text())
    cfg, t_cfg = timed(lambda: validate_config(data))
    lay, t_lay = timed(lambda: Layout(cfg))
    slides, t_list = timed(lambda: list_slides(cfg))
    _, t_plan = timed(lambda: plan_chunks(list(slides), lay.chunk_registry, cfg.chunk_size(),
                                          write=False))
    return dict(validate_s=t_cfg + t_lay, list_slides_s=t_list, plan_chunks_s=t_plan,
                n_listed=len(slides))


def make_second_run_state(ws, timeout: float) -> dict:
    """Outputs present + Snakemake's own metadata records (see the module docstring)."""
    n_outputs, t_touch = timed(lambda: make_touched_state(ws, timeout, cores=TOUCH_CORES))
    meta = ws.root / ".snakemake" / "metadata"
    n_meta = sum(1 for _ in meta.iterdir()) if meta.is_dir() else 0
    if n_meta < n_outputs:
        raise AssertionError(f"--touch wrote {n_meta} metadata records for {n_outputs} outputs")
    return dict(outputs=n_outputs, metadata=n_meta, touch_s=t_touch)


def measure_pathgen(n: int, root: Path, timeout: float) -> dict:
    ws = fake_slide_workspace(root, n, cluster={"chunk_size": CHUNK_SIZE})
    fresh = ws.dry_run(timeout=timeout)
    _, t_parse = timed(lambda: ws.snakemake("--list-rules", timeout=timeout))
    row = dict(fresh_s=fresh.seconds, jobs=fresh.total, counts=fresh.counts, parse_s=t_parse,
               **parse_breakdown(ws))
    assert row["n_listed"] == n, row
    row.update(make_second_run_state(ws, timeout))
    rerun = ws.dry_run(timeout=timeout)
    row.update(rerun_s=rerun.seconds, rerun_jobs=rerun.total, rerun_counts=rerun.counts)
    if rerun.total:
        reasons = rerun.text[rerun.text.rfind("Reasons:"):][:2000]
        raise AssertionError(f"second-run dry run scheduled {rerun.counts} (did the checkout's "
                             f"rules or scripts change during the bench?):\n{reasons}")
    row["ws"] = ws
    return row


# ---------------------------------------------------------------------------------------------
# SLURM-client probe


def slurm_probe(ws, sleep_s: float, timeout: float) -> dict:
    """Plain `-n` and `--executor slurm -n` with stub SLURM client tools on PATH."""
    stub = ws.root / "slurm-stub"
    stub.mkdir(exist_ok=True)
    calls = stub / "scontrol.calls"
    for tool in ("sinfo", "squeue", "sacct"):
        (stub / tool).write_text("#!/bin/sh\nexit 0\n")
    (stub / "scontrol").write_text(
        f'#!/bin/sh\necho "$*" >> {calls}\nsleep {sleep_s}\n'
        'echo "slurm_load_ctl_conf error: Unable to contact slurm controller" >&2\nexit 1\n')
    for f in stub.iterdir():
        f.chmod(0o755)
    env = {"PATH": f"{stub}:{os.environ['PATH']}"}
    out = {}
    for label, extra in (("plain", ()), ("slurm", ("--executor", "slurm", "--jobs", "1"))):
        for stubbed in (False, True):
            calls.unlink(missing_ok=True)
            t0 = time.perf_counter()
            proc = ws.snakemake("-n", "--quiet", "rules", *extra, timeout=timeout, check=False,
                                env=env if stubbed else None)
            dt = time.perf_counter() - t0
            n_calls = len(calls.read_text().splitlines()) if calls.exists() else 0
            out[(label, stubbed)] = dict(s=dt, calls=n_calls, rc=proc.returncode,
                                         err=(proc.stderr or proc.stdout)[-300:])
    return out


# ---------------------------------------------------------------------------------------------


def neutralise_dead_slurm(base: Path) -> str:
    """With SLURM client tools installed but no controller answering, every snakemake start
    pays the SLURM plugin's `scontrol show config` probe (~9 s here) whatever the executor.
    That is a property of the machine, not of the DAG: for the timed runs put a `scontrol`
    that fails at once first on PATH (same for pathgen and bare), and say so."""
    real = shutil.which("scontrol")
    if real is None:
        return "no SLURM client tools on PATH"
    try:
        ok = subprocess.run([real, "ping"], capture_output=True, timeout=5).returncode == 0
    except subprocess.TimeoutExpired:
        ok = False
    if ok:
        return "slurmctld answers: real scontrol left on PATH"
    stub = base / "no-slurmctld-bin"
    stub.mkdir(parents=True, exist_ok=True)
    (stub / "scontrol").write_text("#!/bin/sh\necho 'scontrol: no controller (bench stub)' >&2\nexit 1\n")
    (stub / "scontrol").chmod(0o755)
    os.environ["PATH"] = f"{stub}:{os.environ['PATH']}"
    return f"SLURM tools installed but no controller: fast-failing scontrol stub first on PATH ({stub})"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slides", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per snakemake call")
    ap.add_argument("--workdir", type=Path, default=None, help="keep workspaces here")
    ap.add_argument("--no-bare-chunked", action="store_true", help="skip the bare chunked shape")
    ap.add_argument("--no-slurm-probe", action="store_true")
    ap.add_argument("--probe-sleep", type=float, default=3.0,
                    help="seconds the stub scontrol sleeps (real, no controller: ~9)")
    args = ap.parse_args(argv)
    base = args.workdir or Path(tempfile.mkdtemp(prefix="pathgen-dag-"))
    t_start = time.perf_counter()
    print(f"SLURM client: {neutralise_dead_slurm(base)}")
    rows = []
    try:
        for n in sorted(args.slides):
            p = measure_pathgen(n, base / f"pathgen{n}", args.timeout)
            bare = measure_bare(n, base / f"bare{n}", BARE_PER_SLIDE, args.timeout)
            chunked = (None if args.no_bare_chunked else
                       measure_bare(n, base / f"barechunked{n}", BARE_CHUNKED, args.timeout))
            rows.append((n, p, bare))
            print(f"\n== {n} slides (chunk_size {CHUNK_SIZE}) ==")
            print(f"  pathgen  fresh -n          {p['fresh_s']:7.2f} s  jobs {p['jobs']:>6}  "
                  + " ".join(f"{k}={v}" for k, v in p["counts"].items()))
            print(f"  pathgen  rerun -n          {p['rerun_s']:7.2f} s  jobs {p['rerun_jobs']:>6}  "
                  f"(state: {p['outputs']} outputs, {p['metadata']} metadata records, "
                  f"made by --touch -F in {p['touch_s']:.1f} s)")
            print(f"  pathgen  --list-rules      {p['parse_s']:7.2f} s  (start-up + parse)")
            print(f"  pathgen  in-process        validate_config {p['validate_s']:.2f} s, "
                  f"list_slides {p['list_slides_s']:.2f} s, plan_chunks {p['plan_chunks_s']:.2f} s")
            print(f"  bare     per-slide fresh   {bare['fresh_s']:7.2f} s  jobs {bare['jobs']:>6}")
            if chunked:
                print(f"  bare     chunked fresh     {chunked['fresh_s']:7.2f} s  "
                      f"jobs {chunked['jobs']:>6}")
            sys.stdout.flush()
        if not args.no_slurm_probe:
            ws = rows[0][1]["ws"]
            pr = slurm_probe(ws, args.probe_sleep, args.timeout)
            print(f"\n== SLURM-client probe ({rows[0][0]} slides; stub sinfo/squeue/sacct, "
                  f"stub scontrol sleeps {args.probe_sleep:g} s) ==")
            for label in ("plain", "slurm"):
                a, b = pr[(label, False)], pr[(label, True)]
                what = "snakemake -n" if label == "plain" else "snakemake --executor slurm -n"
                print(f"  {what:<30} no tools {a['s']:6.2f} s | stub tools {b['s']:6.2f} s, "
                      f"{b['calls']} scontrol call(s), +{b['s'] - a['s']:.2f} s"
                      + ("" if b["rc"] == 0 else f" (rc {b['rc']}: {b['err'].strip()[-120:]})"))
        print(f"\nbench wall time {time.perf_counter() - t_start:.0f} s")
        n, p, bare = rows[-1]
        print(f"dag: slides={n} jobs={p['jobs']} fresh_s={p['fresh_s']:.2f} "
              f"rerun_s={p['rerun_s']:.2f} bare_per_slide_s={bare['fresh_s']:.2f}")
    finally:
        if args.workdir is None:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
