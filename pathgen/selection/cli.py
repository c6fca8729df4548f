"""`pathgen select` (one slide) and `pathgen list-prompts`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..cli import add_config_args, config_from_args


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
    p.add_argument("--prompts-file", type=Path, default=None)
    p.add_argument("--text-encoder", default=None, help="encoder name whose text tower is used")
    p.add_argument("--reports", type=Path, default=None, help="CSV slide_id|case_id,report")
    p.add_argument("--top-k", type=int, default=None, help="patches per prompt")
    p.add_argument("--cap", type=int, default=None, help="max patches per slide (selection.max_per_slide)")
    p.add_argument("--factor", type=float, default=None, help="k = ceil(sqrt(factor*n))")
    p.add_argument("--dedupe-cosine", type=float, default=None)
    p.add_argument("--image-format", choices=["jpeg", "png"], default=None)
    p.add_argument("--image-size", type=int, default=None, help="resize saved patches (px)")
    add_config_args(p)
    p.set_defaults(func=_select)

    lp = sub.add_parser("list-prompts", help="Show the morphology prompt sets (or one type's prompts)")
    lp.add_argument("cancer_type", nargs="?", default=None)
    lp.add_argument("--prompts-file", type=Path, default=None)
    lp.set_defaults(func=_list_prompts)


_FLAG_KEYS = {"text_encoder": "text_encoder", "reports": "reports", "top_k": "prompt_top_k",
              "cap": "max_per_slide", "factor": "kmeans_factor", "dedupe_cosine": "dedupe_cosine",
              "image_format": "image_format", "image_size": "image_size_px",
              "prompts_file": "prompts_file"}


def _select(args: argparse.Namespace) -> int:
    from .runner import run_selection
    from .workflow import cancer_types, selection_models

    cfg = config_from_args(args)
    for flag, key in _FLAG_KEYS.items():
        value = getattr(args, flag)
        if value is not None:
            setattr(cfg.selection, key, value)
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
