"""How long `snakemake -n` takes on big slide sets (DAG building only; nothing runs).

For each N it makes N empty .svs files (slide listing never opens them), writes a config that
points slides.dir there, and times, as separate processes:
  parse   `snakemake --list-rules`  (start-up + Snakefile + config validation + slide listing)
  fresh   `snakemake -n`            (all outputs missing: the DAG of every job)
  mocked  `snakemake -n` after touching each slide's tiling/feature outputs (Layout paths):
          the DAG then stats every existing file and schedules only the rest.
plus `pathgen.slides.list_slides` alone, in-process. Target: fresh <= 10 s at 10k slides.

    .venv/bin/python bench/dag.py --slides 1000 10000
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "slurm"))

from workspace import fake_slide_workspace  # noqa: E402

from pathgen.config import load_config  # noqa: E402
from pathgen.paths import Layout  # noqa: E402
from pathgen.slides import list_slides  # noqa: E402


def mock_per_slide_outputs(ws) -> int:
    """Create empty per-slide tiling/feature outputs so the dry run sees them as done."""
    cfg = load_config(ws.config_path)
    lay = Layout(cfg)
    n = 0
    for sid in list_slides(cfg):
        for p in (lay.coords(sid), lay.tiling_qc(sid), lay.contours(sid), lay.features(sid)):
            p.parent.mkdir(parents=True, exist_ok=True)
            p.touch()
            n += 1
    return n


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def measure(n: int, root: Path, mock: bool, timeout: float = 1800) -> dict:
    ws = fake_slide_workspace(root, n)
    cfg = load_config(ws.config_path)
    slides, t_list = timed(lambda: list_slides(cfg))
    assert len(slides) == n
    _, t_parse = timed(lambda: ws.snakemake("--list-rules", timeout=timeout))
    fresh = ws.dry_run(timeout=timeout)
    row = dict(slides=n, list_slides_s=t_list, parse_s=t_parse, fresh_s=fresh.seconds,
               fresh_jobs=fresh.total)
    if mock:
        mock_per_slide_outputs(ws)
        mocked = ws.dry_run(timeout=timeout)
        row.update(mocked_s=mocked.seconds, mocked_jobs=mocked.total)
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slides", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--no-mock", action="store_true", help="skip the mocked-outputs dry run")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per snakemake call")
    ap.add_argument("--workdir", type=Path, default=None, help="keep workspaces here")
    args = ap.parse_args(argv)
    base = args.workdir or Path(tempfile.mkdtemp(prefix="pathgen-dag-"))
    print(f"{'slides':>7} {'list_slides':>11} {'parse':>7} {'fresh -n':>9} {'jobs':>7} "
          f"{'mocked -n':>10} {'jobs':>6}")
    try:
        for n in args.slides:
            r = measure(n, base / f"n{n}", not args.no_mock, args.timeout)
            print(f"{r['slides']:>7} {r['list_slides_s']:>10.2f}s {r['parse_s']:>6.2f}s "
                  f"{r['fresh_s']:>8.2f}s {r['fresh_jobs']:>7} "
                  f"{r.get('mocked_s', float('nan')):>9.2f}s {r.get('mocked_jobs', 0):>6}",
                  flush=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
