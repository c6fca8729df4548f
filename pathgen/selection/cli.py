"""`pathgen select` (one slide) and `pathgen list-prompts`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..cli import add_config_args, add_config_flag, config_from_args


def register(sub) -> None:
    p = sub.add_parser("select", help="Pick representative patches of one slide "
                                      "(prompt retrieval + k-means prototypes)")
    p.add_argument("features", type=Path, help="features HDF5 of the slide")
    p.add_argument("--slide", type=Path, required=True, help="the slide file to cut patches from")
    p.add_argument("--slide-id", default=None, help="default: the features file stem")
    p.add_argument("--out", type=Path, required=True, help="selection CSV to write")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--patches-root", type=Path,
                       help="folder of every slide's patch images; this slide's go to "
                            "<root>/<slide_id> (the root `caption`, `build-dataset` and `instruct` take)")
    where.add_argument("--patches-dir", type=Path, help="this slide's own patch folder instead")
    p.add_argument("--case-id", default=None, help="case id used to find the slide's report")
    p.add_argument("--cancer-type", default=None, help="e.g. LUAD (overrides the sample sheet)")
    add_config_flag(p, "--prompts-file", key="selection.prompts_file", type=Path)
    add_config_flag(p, "--text-encoder", key="selection.text_encoder",
                    help="encoder name whose text tower is used")
    add_config_flag(p, "--reports", key="selection.reports", type=Path,
                    help="CSV slide_id|case_id,report")
    add_config_flag(p, "--top-k", key="selection.prompt_top_k", type=int, help="patches per prompt")
    add_config_flag(p, "--cap", key="selection.max_per_slide", type=int,
                    help="max patches per slide")
    add_config_flag(p, "--factor", key="selection.kmeans_factor", type=float,
                    help="k = ceil(sqrt(factor*n))")
    add_config_flag(p, "--dedupe-cosine", key="selection.dedupe_cosine", type=float)
    add_config_flag(p, "--image-format", key="selection.image_format", choices=["jpeg", "png"])
    add_config_flag(p, "--image-size", key="selection.image_size_px", type=int,
                    help="resize saved patches (px)")
    add_config_args(p)
    p.set_defaults(func=_select)

    lp = sub.add_parser("list-prompts", help="Show the morphology prompt sets (or one type's prompts)")
    lp.add_argument("cancer_type", nargs="?", default=None)
    lp.add_argument("--prompts-file", type=Path, default=None)
    lp.set_defaults(func=_list_prompts)


def _select(args: argparse.Namespace) -> int:
    from .runner import run_selection
    from .workflow import cancer_types, selection_models

    cfg = config_from_args(args)  # --top-k, --cap, ... are selection.* overrides
    slide_id = args.slide_id or args.features.stem
    patches_dir = args.patches_dir or args.patches_root / slide_id
    stats = run_selection(cfg.selection, selection_models(cfg), slide_id, args.features, args.slide,
                          args.out, patches_dir, case_id=args.case_id,
                          cancer_type=args.cancer_type or cancer_types(cfg, [slide_id])[slide_id])
    print(json.dumps(stats, indent=2))
    return 0


def _list_prompts(args: argparse.Namespace) -> int:
    from .prompts import load_prompt_book

    book = load_prompt_book(args.prompts_file)
    if args.cancer_type is None:
        for code, cp in book.types.items():
            print(f"{code:10s} {len(cp.prompts):3d} prompts  {cp.name}  (aliases: {', '.join(cp.aliases)})")
        return 0
    for prompt in book.prompts_for(book.resolve(args.cancer_type, "error")):
        print(prompt)
    return 0
