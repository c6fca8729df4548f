"""`pathgen report`: the one-page HTML summary of a finished (or partial) run."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    from ..cli import add_config_args

    p = sub.add_parser("report", help="Write a self-contained HTML summary of a run's results")
    p.add_argument("--out", default=None, help="Output HTML (default: <results_dir>/report/summary.html)")
    add_config_args(p)
    p.set_defaults(func=_main)


def inputs_for(cfg, slide_ids: list[str], n_qc: int = 3, chunk_files: list | None = None):
    """Report inputs; ``chunk_files``: the per-slide stages' chunk outcome files (their failed
    and blocked members are listed; default: every outcome file found for this layout)."""
    from ..paths import Layout
    from ..runner.state import STAGES
    from .workflow import report_inputs, report_params

    if chunk_files is None:
        L = Layout(cfg)
        chunk_files = [f for st in STAGES for f in sorted((L.stage_dir(st) / "chunks").glob("*.json"))]
    p = report_params(cfg, slide_ids)
    return report_inputs(p["config"], p["slides"], p["dirs"], p["qc_images"], chunk_files, n_qc)


def _main(args) -> int:
    from ..cli import config_from_args
    from ..paths import Layout
    from ..cohort import list_slides
    from .build import build_report

    cfg = config_from_args(args)
    L = Layout(cfg)
    out = Path(args.out) if args.out else L.report_html
    build_report(inputs_for(cfg, list(list_slides(cfg))), out, L.report_figures_dir)
    print(f"report: {out}")
    return 0
