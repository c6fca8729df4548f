"""Scratch workspaces for running the real Snakefile on small or fake slide sets.

Used by the workflow tests (the SLURM integration test, the incremental-rerun and rerun-trigger
tests, the conftest's ``ws`` fixture) and bench/dag.py / bench/submissions.py. A workspace is a
folder with its own config.yaml (results inside it); snakemake runs there with
``-s <repo>/Snakefile`` so the checkout's results/ is never touched.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


@dataclass
class Workspace:
    root: Path
    config: dict = field(default_factory=dict)

    @property
    def config_path(self) -> Path:
        return self.root / "config.yaml"

    def write_config(self, **updates) -> None:
        """Deep-merge ``updates`` (nested dicts) into the config and write config.yaml."""
        merge_config(self.config, updates)
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))

    def snakemake(self, *args: str, timeout: float = 600, check: bool = True,
                  env: dict | None = None) -> subprocess.CompletedProcess:
        """Run snakemake in the workspace under ``timeout -k 15`` (a stuck executor ignores TERM)."""
        cmd = ["timeout", "-k", "15", str(int(timeout))] + SNAKEMAKE + [
            "-s", str(REPO / "Snakefile"), "--directory", str(self.root), *args]
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        proc = subprocess.run(cmd, cwd=self.root, capture_output=True, text=True, env=full_env)
        if check and proc.returncode != 0:
            raise AssertionError(f"snakemake {' '.join(args)} failed (rc {proc.returncode}):\n"
                                 f"{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
        return proc

    def start(self, *args: str, timeout: float = 600, env: dict | None = None) -> subprocess.Popen:
        """Like :meth:`snakemake` but in the background (stdout+stderr to <root>/snakemake.out)."""
        cmd = ["timeout", "-k", "15", str(int(timeout))] + SNAKEMAKE + [
            "-s", str(REPO / "Snakefile"), "--directory", str(self.root), *args]
        out = open(self.root / "snakemake.out", "w")
        return subprocess.Popen(cmd, cwd=self.root, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})

    def dry_run(self, *args: str, quiet: bool = True, timeout: float = 600) -> "DryRun":
        """`snakemake -n`; quiet=False keeps the per-job listing (see :func:`parse_jobs`)."""
        t0 = time.perf_counter()
        proc = self.snakemake("-n", *(["--quiet", "rules"] if quiet else []), *args,
                              timeout=timeout)
        return DryRun(parse_job_counts(proc.stdout + proc.stderr), time.perf_counter() - t0,
                      proc.stdout + proc.stderr)

    def list_rules(self) -> list[str]:
        proc = self.snakemake("--list-rules")
        return [ln.strip() for ln in proc.stdout.splitlines() if re.fullmatch(r"\s*\w+\s*", ln)]


@dataclass
class DryRun:
    counts: dict[str, int]
    seconds: float
    text: str

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def parse_job_counts(text: str) -> dict[str, int]:
    """Snakemake's 'Job stats' table -> {rule: count} (without the 'total' line)."""
    counts: dict[str, int] = {}
    lines = text.splitlines()
    try:
        start = next(i for i, ln in enumerate(lines) if ln.strip() == "Job stats:")
    except StopIteration:
        return counts  # "Nothing to be done"
    for ln in lines[start + 3:]:
        m = re.fullmatch(r"(\w+)\s+(\d+)", ln.strip())
        if not m:
            break
        if m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


def merge_config(dst: dict, src: dict) -> None:
    """Deep-merge ``src`` (nested dicts) into ``dst`` in place."""
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            merge_config(dst[k], v)
        else:
            dst[k] = v


def fake_slide_workspace(root: Path, n_slides: int, **config) -> Workspace:
    """A workspace over ``n_slides`` EMPTY .svs files (for DAG-only measurements)."""
    slides = root / "slides"
    slides.mkdir(parents=True, exist_ok=True)
    for i in range(n_slides):
        (slides / f"TCGA-FAKE-{i:05d}.svs").touch()
    ws = Workspace(root)
    ws.write_config(results_dir=str(root / "results"), demo={"enabled": False},
                    slides={"dir": str(slides), "default_mpp": 0.5}, **config)
    return ws


def parse_jobs(text: str) -> list[tuple[str, dict[str, str], str]]:
    """Jobs of a (non-quiet) dry run: [(rule, wildcards, reason)], group members included."""
    jobs: list[tuple[str, dict[str, str], str]] = []
    cur = None
    for line in text.splitlines():
        m = re.match(r"\s*(?:local)?(?:rule|checkpoint) (\w+):\s*$", line)
        if m:
            cur = [m.group(1), {}, ""]
            jobs.append(cur)
            continue
        if cur is None:
            continue
        s = line.strip()
        if s.startswith("wildcards:"):
            cur[1] = dict(kv.split("=", 1) for kv in s[len("wildcards:"):].strip().split(", ") if "=" in kv)
        elif s.startswith("reason:"):
            cur[2] = s[len("reason:"):].strip()
    return [(j[0], j[1], j[2]) for j in jobs]


def parse_job_inputs(text: str) -> dict[str, str]:
    """rule -> its `input:` line from a dry run (last job of that rule wins)."""
    out: dict[str, str] = {}
    cur = None
    for line in text.splitlines():
        m = re.match(r"\s*(?:local)?(?:rule|checkpoint) (\w+):\s*$", line)
        if m:
            cur = m.group(1)
        elif cur and line.strip().startswith("input:"):
            out[cur] = line.strip()[len("input:"):].strip()
    return out


def parse_job_outputs(text: str) -> list[tuple[str, list[str]]]:
    """[(rule, output files)] of a (non-quiet) dry run, in listing order (not execution
    order); jobs without outputs (e.g. `all`) are left out. Paths must not contain ', '."""
    out: list[tuple[str, list[str]]] = []
    cur = None
    for line in text.splitlines():
        m = re.match(r"\s*(?:local)?(?:rule|checkpoint) (\w+):\s*$", line)
        if m:
            cur = m.group(1)
        elif cur and line.strip().startswith("output:"):
            files = [f for f in line.strip()[len("output:"):].strip().split(", ") if f]
            out.append((cur, files))
            cur = None
    return out


# Keys of `demo:` that shape one demo slide (rules/demo.smk DEMO_SLIDE_SETTINGS).
DEMO_SLIDE_KEYS = {"seed", "width_px", "height_px", "mpp", "app_mag", "tile_size", "jpeg_quality"}


def plant_unreadable_demo_slide(ws: Workspace, slide_id: str) -> Path:
    """Turn one demo slide into an unreadable file, as if the disk corrupted it after the demo
    stage wrote it: a truncated TIFF at the slide's path plus the demo stage's own `done`
    record (same fingerprint as rules/demo.smk computes), so the workflow keeps the file and
    the *tile* stage meets the bad slide. Call after write_config, before the run."""
    from pathgen.config import load_config
    from pathgen.paths import Layout
    from pathgen.runner.state import DONE, fingerprint, write_record

    cfg = load_config(ws.config_path)
    lay = Layout(cfg)
    settings = cfg.demo.model_dump(mode="json", include=DEMO_SLIDE_KEYS)
    svs, regions = lay.demo_slide(slide_id), lay.demo_regions(slide_id)
    svs.parent.mkdir(parents=True, exist_ok=True)
    regions.parent.mkdir(parents=True, exist_ok=True)
    # A little-endian TIFF header whose first IFD lies past the end of the file.
    svs.write_bytes(b"II*\x00" + (1 << 20).to_bytes(4, "little") + b"\x00" * 56)
    regions.write_text('{"type": "FeatureCollection", "features": []}\n')
    write_record(lay.slide_state("demo", slide_id), {
        "slide_id": slide_id, "stage": "demo", "status": DONE,
        "fingerprint": fingerprint("demo", settings, slide_id, None), "error": None, "fix": None,
        "attempts": 1, "finished": "2000-01-01T00:00:00+00:00", "info": {}})
    return svs


def make_touched_state(ws: Workspace, timeout: float = 600, cores: int = 1) -> int:
    """A finished-run state without running any job: every declared output created empty and
    `snakemake --touch -F` writing Snakemake's own metadata records for them (as after a real
    run). Returns the number of outputs. ``cores``: jobs touched at once (the same records;
    with one, Snakemake's scheduler re-checks every waiting job's inputs after each job, which
    takes an hour at 30k slides)."""
    listing = ws.snakemake("-n", "-F", timeout=timeout)
    outputs = sorted({Path(f) for _, files in parse_job_outputs(listing.stdout) for f in files})
    for p in outputs:
        p = p if p.is_absolute() else ws.root / p
        p.parent.mkdir(parents=True, exist_ok=True)
        p.touch()
    ws.snakemake("--touch", "-F", "--cores", str(cores), "--quiet", "all", timeout=timeout)
    return len(outputs)


def make_finished_state(ws: Workspace, timeout: float = 600) -> Workspace:
    """:func:`make_touched_state`, then check that a dry run has nothing left to do (only
    `all`): the starting point of the rerun-trigger tests, which edit one setting and look at
    what a dry run schedules."""
    make_touched_state(ws, timeout=timeout)
    left = {rule for rule, _, _ in parse_jobs(ws.dry_run(quiet=False, timeout=timeout).text)}
    assert left <= {"all"}, f"a touched workspace still has jobs to run: {sorted(left)}"
    return ws


def small_settings() -> dict:
    """The demo's small offline compute settings (tiling, features, captioning, selection,
    training) for tests that run the workflow on their own few slides: with real slides every
    unset key is the real-data default, which needs pretrained weights and a model server."""
    from pathgen.config.layers import demo_overlay

    overlay = demo_overlay()
    out = {k: overlay[k] for k in ("tiling", "features", "captioning", "selection")}
    out["training"] = {k: v for k, v in overlay["training"].items()
                       if k not in ("baselines", "slide_text")}
    return out
