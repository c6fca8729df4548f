"""`pathgen build-dataset` and `pathgen read-pathgen-json`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..cli import add_config_args, add_config_flag, config_from_args


def register(sub) -> None:
    p = sub.add_parser("build-dataset", help="Caption JSONL files -> PathGen JSON, open_clip CSV, "
                                             "WebDataset shards, dataset card, gallery")
    p.add_argument("captions", nargs="+", type=Path, help="per-slide caption .jsonl files")
    p.add_argument("--out", type=Path, required=True, help="dataset folder")
    p.add_argument("--patches-root", "--images-root", dest="images_root", type=Path, default=None,
                   help="folder the records' `image` paths are relative to (selection/patches)")
    add_config_flag(p, "--csv-separator", key="dataset.csv_separator",
                    help="e.g. '\\t' (default) or ','")
    add_config_flag(p, "--csv-paths", key="dataset.csv_paths", choices=["absolute", "relative"])
    add_config_flag(p, "--shard-size", key="dataset.shard_size", type=int)
    add_config_flag(p, "--images", key="dataset.images", choices=["hardlink", "copy", "symlink"])
    add_config_flag(p, "--caption-stage", key="dataset.caption_stage",
                    choices=["describe", "revise", "summarize"],
                    help="which agent's text is the caption (per-agent ablation; default summarize)")
    add_config_flag(p, "--dedup-cosine", key="dataset.dedup_cosine", type=float,
                    help="remove near-duplicates across the dataset at this cosine (stored embeddings)")
    p.add_argument("--features-dir", type=Path, default=None,
                   help="folder of the slides' features HDF5 (<slide>.h5) for --dedup-cosine; "
                        "default: the folder above the captions folder")
    add_config_flag(p, "--include-rejected", key="dataset.accepted_only", const=False,
                    help="also keep records with accepted: false (for inspection only)")
    add_config_args(p)
    p.set_defaults(func=_build)

    r = sub.add_parser("read-pathgen-json", help="Check/summarise a PathGen release JSON "
                                                 "(tolerates the WSI_id key)")
    r.add_argument("path", type=Path)
    r.set_defaults(func=_read)


def _build(args: argparse.Namespace) -> int:
    from .build import build_dataset, run_file_ids
    from .records import DatasetInputError

    cfg = config_from_args(args)  # --csv-separator, ..., --include-rejected are dataset.* overrides
    d = cfg.dataset
    try:
        features = None
        if args.features_dir is not None:
            from ..features.files import slide_features_file
            from .records import slide_id_of

            features = {slide_id_of(f): slide_features_file(args.features_dir, slide_id_of(f))
                        for f in args.captions}
        # the file ids the workflow rule gets (sample sheet `file_id` column + dataset.file_ids)
        card = build_dataset(args.captions, args.out, d, images_root=args.images_root,
                             file_ids=run_file_ids(cfg.slides.sample_sheet, d.file_ids), features=features)
    except DatasetInputError as err:
        print(f"pathgen build-dataset: refused input: {err}", file=sys.stderr)
        return 1
    summary = {k: card[k] for k in ("n_slides", "n_records", "n_accepted", "n_rejected", "n_pairs",
                                    "csv_separator", "shards", "caption_stage")}
    summary["dedup"] = {k: v for k, v in card["dedup"].items() if k != "removed"}
    print(json.dumps(summary, indent=2))
    return 0


def _read(args: argparse.Namespace) -> int:
    from .pathgen_json import read_pathgen_json

    items = read_pathgen_json(args.path)
    slides = {i["wsi_id"] for i in items}
    print(json.dumps({"items": len(items), "slides": len(slides),
                      "with_file_id": sum(bool(i["file_id"]) for i in items),
                      "first": items[0] if items else None}, indent=2))
    return 0
