"""`pathgen train`: run the configured CLIP training stages (or print their open_clip argv)."""

from __future__ import annotations

import argparse

from ..cli import add_config_args, add_config_flag, add_override, config_from_args
from ..config.training import BASELINES
from ..dataset.files import csv_and_card, dataset_files


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="Train a CLIP with open_clip's trainer (stages from training.*)",
        description="Runs open_clip_train.main once per training stage; reruns skip finished "
                    "stages and resume unfinished ones (--resume latest).")
    add_config_args(p)
    p.add_argument("--dry-run", action="store_true", help="Print the open_clip command per stage.")
    p.add_argument("--data", action="append", default=None, metavar="CSV|SHARDS",
                   help="Train one stage on these sources instead of training.stages (= --set "
                        "'training.stages=[{name: main, data: [...], csv_separator: ...}]').")
    p.add_argument("--csv-separator", default=None, help="Separator of --data CSVs.")
    add_config_flag(p, "--results-dir", key="results_dir")
    add_config_flag(p, "--arch", key="training.arch")
    add_config_flag(p, "--pretrained", key="training.pretrained")
    add_config_flag(p, "--epochs", key="training.epochs", type=int)
    add_config_flag(p, "--batch-size", key="training.batch_size", type=int)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (CPU runs).")
    p.add_argument("--baseline", default=None, choices=BASELINES,
                   help="Train this baseline (training.baselines) on its pairs (pathgen baseline-data).")
    p.set_defaults(func=_run)
    b = subparsers.add_parser(
        "baseline-data", help="Pairs of a training baseline: slide_text = each caption-dataset "
                              "patch with its slide's label sentence",
        description="Reads the caption dataset folder (open_clip.csv + pathgen.json + "
                    "dataset_card.json) and a CLAM labels CSV; writes open_clip.csv + "
                    "dataset_card.json into --out (default: training/baselines/slide_text/data).")
    add_config_args(b)
    b.add_argument("--dataset", default=None, help="Caption dataset folder (default: <results>/dataset).")
    add_config_flag(b, "--labels", key="training.slide_text.labels",
                    help="CLAM dataset CSV slide_id,label.")
    add_config_flag(b, "--template", key="training.slide_text.template",
                    help="Sentence with '{}' for the label text.")
    b.add_argument("--out", default=None, help="Output folder.")
    b.set_defaults(func=_baseline_data)


def _run(args: argparse.Namespace) -> int:
    from .run import describe, train
    from .workflow import train_arguments

    if args.data:
        add_override(args, "--data", "training.stages",
                     [{"name": "main", "data": args.data, "csv_separator": args.csv_separator}])
    cfg = config_from_args(args)  # --results-dir, --arch, ... are overrides too
    if args.baseline and args.baseline not in cfg.training.baselines:
        cfg.training.baselines = [*cfg.training.baselines, args.baseline]
    result = train(**train_arguments(cfg, args.baseline), dry_run=args.dry_run, threads=args.threads)
    print(describe(result))
    if not args.dry_run:
        print(f"final checkpoint: {result.final}")
        if result.loss_first_epoch is not None:
            print(f"loss: first epoch {result.loss_first_epoch:.4f} -> last epoch "
                  f"{result.loss_last_epoch:.4f}")
    return 0


def _baseline_data(args: argparse.Namespace) -> int:
    from ..paths import Layout
    from .baselines import build_slide_text_dataset
    from .workflow import SLIDE_TEXT_SOURCES, slide_text_labels

    cfg = config_from_args(args)  # --labels and --template are overrides
    out = csv_and_card(args.out) if args.out else Layout(cfg, "slide_text").training_data_files()
    dataset = dataset_files(args.dataset or Layout(cfg).dataset_dir)
    labels = slide_text_labels(cfg)
    card = build_slide_text_dataset(cfg.training.slide_text, {k: dataset[k] for k in SLIDE_TEXT_SOURCES},
                                    labels, out)
    print(f"{card['n_pairs']} pairs from {card['n_slides']} slides -> {out['csv']}")
    return 0
