"""`pathgen export clam|trident|check`: pathgen outputs as CLAM or TRIDENT lay them out."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    from ..cli import add_config_args

    p = subparsers.add_parser(
        "export", help="Write coords/features in CLAM's or TRIDENT's layout and meaning",
        description="Export pathgen coords and features so CLAM or TRIDENT read them as their own. "
                    "Inputs default to the configured run's tiles folder.")
    sub = p.add_subparsers(dest="export_command", metavar="FORMAT", required=True)
    clam = sub.add_parser("clam", help="patches/, h5_files/, pt_files/ with CLAM's patch_level meaning")
    clam.add_argument("--out", type=Path, required=True,
                      help="CLAM folder (its --data_h5_dir, --feat_dir and MIL data_root_dir)")
    trident = sub.add_parser("trident", help="<job>/<mag>x_<px>px_<ov>px_overlap/{patches,features_<enc>}")
    trident.add_argument("--job", type=Path, required=True, help="TRIDENT job folder (its --job_dir)")
    for q in (clam, trident):
        q.add_argument("--coords", type=Path, default=None, help="coords folder or one coords .h5")
        q.add_argument("--features", type=Path, default=None, help="features folder or one features .h5")
        add_config_args(q)
        q.set_defaults(func=_run)
    check = sub.add_parser("check", help="Say which field CLAM, TRIDENT and pathgen cut from a file")
    check.add_argument("files", type=Path, nargs="+", help="coords or features .h5 files")
    check.set_defaults(func=_check)


def _inputs(args):
    """--coords/--features, else the run's coords and features folders (those that exist)."""
    if args.coords is not None or args.features is not None:
        return args.coords, args.features
    from ..cli import config_from_args
    from ..paths import Layout

    lay = Layout(config_from_args(args))
    feats = lay.features_dir()
    return lay.coords_dir(), feats if feats.is_dir() else None


def _run(args: argparse.Namespace) -> int:
    from .sources import ExportError

    coords, features = _inputs(args)
    try:
        if args.export_command == "clam":
            from .clam import export_clam

            rows, dest = export_clam(args.out, coords, features), args.out
        else:
            from .trident import export_trident

            rows, dest = export_trident(args.job, coords, features), args.job
    except ExportError as err:
        print(f"pathgen export {args.export_command}: {err}", file=sys.stderr)
        return 1
    for r in rows:
        where = f"patch_level {r['patch_level']}, patch_size {r['patch_size']}" if "patch_level" in r \
            else r["geometry"]
        extra = f", features (N, {r['dim']})" if "dim" in r else ""
        print(f"{r['slide_id']}: {r['n']} patches ({where}){extra}")
    print(f"{len(rows)} slides -> {dest}")
    return 0


def _check(args: argparse.Namespace) -> int:
    import h5py

    from ..h5attrs import plain
    from ..tiling.conventions import convention_conflicts, readings

    worst = 0
    for path in args.files:
        try:
            with h5py.File(path, "r") as f:
                attrs = {k: plain(v) for k, v in f["coords"].attrs.items()}
        except (OSError, KeyError) as err:
            print(f"{path}: not a coords/features HDF5 with a 'coords' dataset ({err})", file=sys.stderr)
            worst = 1
            continue
        seen = ", ".join(f"{k} {v:.0f}" for k, v in readings(attrs).items())
        msgs = convention_conflicts(attrs)
        print(f"{path}: level-0 px cut by {seen or 'no known reader'}: "
              + ("CLAM and TRIDENT agree" if not msgs else "; ".join(msgs)))
        worst = max(worst, 1 if msgs else 0)
    return worst
