"""`pathgen status`: slides x per-slide stages, from the state records the chunk jobs write."""

from __future__ import annotations

import json
import sys


def register(sub) -> None:
    from ..cli import add_config_args

    p = sub.add_parser("status", help="Per-slide stage status (done/failed/blocked/pending) with "
                                      "each failure's error and fix, and counts per stage")
    p.add_argument("--failed", action="store_true", help="only slides with a failed stage")
    p.add_argument("--json", action="store_true", help="the records as JSON (slide -> stage -> record)")
    add_config_args(p)
    p.set_defaults(func=_main)


def stages_for(cfg) -> list[str]:
    from .state import STAGES

    return [s for s in STAGES if s != "demo" or cfg.uses_demo]


def _main(args) -> int:
    from ..cli import config_from_args
    from ..paths import Layout
    from .state import FAILED, collect, status_table
    from ..cohort import list_slides

    cfg = config_from_args(args)
    L = Layout(cfg)
    stages = stages_for(cfg)
    slide_ids = list(list_slides(cfg))
    table = collect({st: L.slide_state_dir(st) for st in stages}, slide_ids)
    if args.json:
        json.dump(table, sys.stdout, indent=1)
        print()
    else:
        text, _ = status_table(table, stages, only_problems=args.failed,
                               not_captioned=set(L.holdout_ids(slide_ids)))
        print(text)
        for line in running_chunks(L):
            print(line)
    # exit 1 when some slide is quarantined, so scripts can notice
    return 1 if any(r.get("status") == FAILED for recs in table.values() for r in recs.values()) else 0


def running_chunks(L) -> list[str]:
    """One line per running caption chunk: items done / total, rate, ETA (its progress file)."""
    from .progress import RUNNING, read_progress

    out = []
    from ..captioning.files import CHUNK_PROGRESS_SUFFIX

    for path in sorted(L.chunk_done("caption", "x").parent.glob("*" + CHUNK_PROGRESS_SUFFIX)):
        doc = read_progress(path)
        if not doc or doc.get("state") != RUNNING:
            continue
        eta = f", ETA {doc['eta_s']:.0f} s" if doc.get("eta_s") is not None else ""
        out.append(f"  caption {doc['chunk']} running on {doc.get('host', '?')}: {doc['done']}/"
                   f"{doc['total']} {doc.get('unit', 'items')}, {doc['rate_per_s']:.2f}/s{eta} "
                   f"(updated {doc.get('updated', '?')})")
    return (["", "running:"] + out) if out else []
