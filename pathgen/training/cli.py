"""`pathgen train`: run the configured CLIP training stages (or print their open_clip argv)."""

from __future__ import annotations

import argparse

from ..cli import add_config_args, config_from_args


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="Train a CLIP with open_clip's trainer (stages from training.*)",
        description="Runs open_clip_train.main once per training stage; reruns skip finished "
                    "stages and resume unfinished ones (--resume latest).")
    add_config_args(p)
    p.add_argument("--dry-run", action="store_true", help="Print the open_clip command per stage.")
    p.add_argument("--data", action="append", default=None, metavar="CSV|SHARDS",
                   help="Train one stage on these sources instead of training.stages.")
    p.add_argument("--csv-separator", default=None, help="Separator of --data CSVs.")
    p.add_argument("--results-dir", default=None, help="Override results_dir.")
    p.add_argument("--arch", default=None, help="Override training.arch.")
    p.add_argument("--pretrained", default=None, help="Override training.pretrained.")
    p.add_argument("--epochs", type=int, default=None, help="Override training.epochs.")
    p.add_argument("--batch-size", type=int, default=None, help="Override training.batch_size.")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (CPU runs).")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ..config.training import TrainStage
    from .run import describe, train

    cfg = config_from_args(args)
    updates = {}
    if args.results_dir:
        cfg.results_dir = args.results_dir
    for key in ("arch", "pretrained", "epochs", "batch_size"):
        if getattr(args, key) is not None:
            updates[key] = getattr(args, key)
    if args.data:
        updates["stages"] = [TrainStage(name="main", data=args.data,
                                        csv_separator=args.csv_separator)]
    for key, value in updates.items():
        setattr(cfg.training, key, value)
    result = train(cfg, dry_run=args.dry_run, threads=args.threads)
    print(describe(result))
    if not args.dry_run:
        print(f"final checkpoint: {result.final}")
        if result.loss_first_epoch is not None:
            print(f"loss: first epoch {result.loss_first_epoch:.4f} -> last epoch "
                  f"{result.loss_last_epoch:.4f}")
    return 0
