"""`pathgen audit sample | serve | score`: the caption audit loop (docs/dataset.md
"Auditing captions")."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub) -> None:
    from ..cli import add_config_args

    p = sub.add_parser("audit", help="Audit captions by hand: sample pairs, review them in a local "
                                     "web page, score the verdicts")
    a = p.add_subparsers(dest="audit_command", metavar="ACTION")
    a.required = True

    s = a.add_parser("sample", help="Seeded, stratified sample of the dataset's final pairs -> an audit folder")
    s.add_argument("--n", type=int, required=True, help="pairs to sample (in all)")
    s.add_argument("--out", type=Path, required=True, help="audit folder to write")
    s.add_argument("--stratify", default="cancer_type",
                   help="stratum of a pair: cancer_type (sample-sheet column, else "
                        "selection.cancer_type), another sample-sheet column, slide_id, model, "
                        "backend, or none (default cancer_type)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--dataset", type=Path, default=None,
                   help="dataset folder (default: the run's results/dataset)")
    s.add_argument("--allocation", choices=["proportional", "equal"], default="proportional",
                   help="items per stratum: proportional to its pairs (default) or equal")
    s.add_argument("--strata-table", type=Path, default=None,
                   help="CSV slide_id,<stratify column> giving each slide's stratum (instead of the "
                        "sample sheet)")
    s.add_argument("--captions", type=Path, nargs="+", default=None,
                   help="per-slide caption .jsonl files to take the describe/revise texts from "
                        "(default: the dataset's shard metadata)")
    s.add_argument("--images", choices=["hardlink", "copy", "symlink"], default="hardlink",
                   help="how the patches get into the audit folder (hardlink falls back to copy)")
    s.add_argument("--force", action="store_true",
                   help="replace a different sample in a folder that already has verdicts")
    add_config_args(s)
    s.set_defaults(func=_sample)

    v = a.add_parser("serve", help="Review page of an audit folder on http://127.0.0.1:PORT/")
    v.add_argument("dir", type=Path, help="audit folder (pathgen audit sample --out)")
    v.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0 = any free port)")
    v.add_argument("--open", action="store_true", help="open the page in the default browser")
    v.set_defaults(func=_serve)

    c = a.add_parser("score", help="Accuracy (Wilson 95 %% CI), agreement (Cohen's kappa) and "
                                   "describe-vs-revise of the verdicts -> score.json, score.md")
    c.add_argument("dir", type=Path, help="audit folder")
    c.set_defaults(func=_score)


def slide_strata(cfg, stratify: str, table: Path | None):
    """A function slide ids -> {slide: stratum} for ``--stratify`` (None: from the pair)."""
    from ..config import ConfigError
    from ..selection.workflow import cancer_types
    from ..slide_tables import read_table
    from .sample import NO_STRATA, PAIR_STRATA

    def column(path: Path, what: str) -> dict[str, str]:
        header, rows = read_table(path, what, ("slide_id",))
        if stratify not in header:
            raise ConfigError(f"{path}: --stratify {stratify}: no column {stratify!r} (header {header})")
        return {row["slide_id"]: row[stratify] for _, row in rows if row.get(stratify)}

    if table is not None:
        return column(table, "--strata-table")
    if stratify in NO_STRATA or stratify in PAIR_STRATA:
        return None
    if stratify in ("cancer_type", cfg.selection.cancer_type_column):
        return lambda slides: cancer_types(cfg, slides)
    if cfg.slides.sample_sheet is None:
        raise ConfigError(f"--stratify {stratify}: a slide column needs slides.sample_sheet (or "
                          "--strata-table CSV slide_id,<column>); or use cancer_type, slide_id, "
                          "model, backend, none")
    return column(Path(cfg.slides.sample_sheet), "slides.sample_sheet")


def _fail(err: Exception) -> int:
    print(f"pathgen audit: {err}", file=sys.stderr)
    return 2


def _sample(args: argparse.Namespace) -> int:
    from ..cli import config_from_args
    from ..paths import Layout
    from .sample import AuditError, sample_audit

    cfg = config_from_args(args)
    dataset = args.dataset or Layout(cfg).dataset_dir
    try:
        m = sample_audit(dataset, args.out, args.n, args.seed, args.stratify,
                         slide_strata(cfg, args.stratify, args.strata_table), args.allocation,
                         args.images, args.captions, args.force)
    except AuditError as err:
        return _fail(err)
    strata = ", ".join(f"{k} {v['sampled']}/{v['population']}" for k, v in m["strata"].items())
    print(f"audit sample: {m['n']} of {m['population']} pairs ({args.stratify}: {strata}) -> {args.out}")
    print(f"next: pathgen audit serve {args.out}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from .sample import AuditError
    from .server import serve

    try:
        serve(args.dir, args.port, args.open)
    except AuditError as err:
        return _fail(err)
    return 0


def _score(args: argparse.Namespace) -> int:
    from .files import score_files
    from .sample import AuditError
    from .score import score_markdown, write_score

    try:
        res = write_score(args.dir)
    except AuditError as err:
        return _fail(err)
    print(score_markdown(res))
    out = score_files(args.dir)
    print(f"audit score: {out['json']}, {out['md']}")
    return 0
