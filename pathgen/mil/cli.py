"""`pathgen mil`, `pathgen mil-labels`, `pathgen mil-splits`, `pathgen mil-table`.

Plain paths work without a config:
    pathgen mil --labels labels.csv --features-dir features_uni/ --model abmil --out out/ --folds 5
`--config/--set` supply hyper-parameters (evaluation.mil.*); `--task NAME` runs a configured task.
    pathgen mil-labels --preset camelyon16 --slides-dir /data/c16 --out c16/labels.csv
builds a preset task's labels table (+ CLAM splits) from the dataset's own file names.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..cli import add_config_args, add_config_flag, config_from_args, flag_overrides
from ..config import ConfigError

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("mil", help="Train/evaluate MIL models (ABMIL/ACMIL/TransMIL) on slide features")
    add_config_args(p)
    p.add_argument("--task", help="Run a task from evaluation.mil.tasks (needs --config or config.yaml)")
    p.add_argument("--labels", type=Path, help="CLAM dataset CSV case_id,slide_id,label "
                                               "(or STAMP clinical table with --slide-table)")
    p.add_argument("--slide-table", type=Path, help="STAMP slide table PATIENT,FILENAME")
    p.add_argument("--target", default="label", help="Label column (default: label)")
    p.add_argument("--classes", help="Comma-separated class order (default: sorted labels)")
    p.add_argument("--features-dir", type=Path, help="Feature folder (pathgen/TRIDENT/CLAM/STAMP)")
    p.add_argument("--model", default="abmil", help="abmil, acmil, transmil (comma-separated for several)")
    p.add_argument("--out", type=Path, help="Output folder (one sub-folder per model)")
    p.add_argument("--splits", type=Path, help="Given splits: folder of splits_<k>.csv, a CSV or JSON")
    p.add_argument("--folds", type=int, default=5, help="Generated folds when --splits is absent")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--encoder", default=None, help="Encoder name (recorded; picks features with --task)")
    add_config_flag(p, "--epochs", key="evaluation.mil.epochs", type=int)
    add_config_flag(p, "--seed", key="evaluation.mil.seed", type=int)
    add_config_flag(p, "--select-by", key="evaluation.mil.select_by", choices=["auroc", "f1_auc"],
                    help="Epoch selection: val AUROC, or val F1 + AUROC")
    add_config_flag(p, "--device", key="evaluation.mil.device", help="cpu, cuda, auto")
    p.add_argument("--slides-dir", type=Path, help="Folder with the slides (thumbnails for heatmaps)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.set_defaults(func=_cmd_mil)

    lab = sub.add_parser("mil-labels", help="Build a preset task's labels table (+ splits) from the dataset's "
                                            "files: camelyon16, bracs, tcga_nsclc, tcga_rcc")
    lab.add_argument("--preset", required=True, help="camelyon16, bracs, tcga_nsclc, tcga_rcc")
    lab.add_argument("--slides-dir", type=Path, required=True, help="Folder holding the slides (searched recursively)")
    lab.add_argument("--out", type=Path, required=True, help="Labels CSV to write (case_id,slide_id,label,...)")
    lab.add_argument("--splits-out", type=Path, help="Folder for CLAM splits_<k>.csv (default: splits/ "
                                                     "beside --out); 'none' to skip")
    lab.add_argument("--reference", type=Path, help="CAMELYON16 reference.csv (default: found under --slides-dir)")
    lab.add_argument("--manifest", type=Path, help="TCGA: GDC sample sheet or clinical table with project_id")
    lab.add_argument("--folds", type=int, help="Folds / CAMELYON16 seeds (default: the preset's)")
    lab.add_argument("--val-fraction", type=float, help="Validation share of training patients (preset's)")
    lab.add_argument("--seed", type=int, default=0)
    lab.set_defaults(func=_cmd_labels)

    s = sub.add_parser("mil-splits", help="Write patient-level stratified CLAM splits for a labels table")
    add_config_args(s)
    s.add_argument("--task", help="Configured task (writes to results/eval/mil/<task>/splits)")
    s.add_argument("--labels", type=Path)
    s.add_argument("--classes")
    s.add_argument("--folds", type=int, default=5)
    s.add_argument("--val-fraction", type=float, default=0.1)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", type=Path, help="Folder for splits_<k>.csv")
    s.set_defaults(func=_cmd_splits)

    t = sub.add_parser("mil-table", help="Combine metrics.json files into one CSV + Markdown table")
    t.add_argument("metrics", nargs="+", type=Path)
    t.add_argument("--out-csv", type=Path, required=True)
    t.add_argument("--out-md", type=Path, required=True)
    t.set_defaults(func=_cmd_table)


def _classes(arg: str | None, labels: Path, target: str, slide_table: Path | None) -> list[str]:
    if arg:
        return [c.strip() for c in arg.split(",") if c.strip()]
    import pandas as pd
    df = pd.read_csv(labels, dtype=str, keep_default_na=False,
                     sep="\t" if labels.suffix in (".tsv", ".txt") else ",")
    if target not in df.columns:
        raise ConfigError(f"{labels} has no column '{target}'; pass --target")
    return sorted({v.strip() for v in df[target] if v.strip()})


def _cmd_splits(args) -> int:
    from .splits import make_splits
    from .labels import read_labels
    from .workflow import config_task_splits
    if args.task:
        paths = config_task_splits(config_from_args(args), args.task)
    else:
        if not (args.labels and args.out):
            raise ConfigError("mil-splits needs --task, or --labels and --out")
        classes = _classes(args.classes, args.labels, "label", None)
        table = read_labels(args.labels, classes)
        paths = make_splits(table, classes, args.out, given=None, folds=args.folds,
                            val_fraction=args.val_fraction, seed=args.seed)
    print("\n".join(map(str, paths)))
    return 0


def _cmd_labels(args) -> int:
    import json

    from .preset_tasks import write_task
    splits = args.splits_out if args.splits_out is not None else args.out.parent / "splits"
    if str(splits).lower() == "none":
        splits = None
    s = write_task(args.preset, args.slides_dir, args.out, splits, reference=args.reference,
                   manifest=args.manifest, folds=args.folds, val_fraction=args.val_fraction, seed=args.seed)
    print(json.dumps(s, indent=1))
    print(f"config: evaluation.mil.tasks.<name>: {{preset: {s['preset']}, labels: {s['labels']}"
          + (f", splits: {s['splits']}" if "splits" in s else "") + "}")
    return 0


def _cmd_table(args) -> int:
    from .results_table import to_markdown, write_table
    print(to_markdown(write_table(args.metrics, args.out_csv, args.out_md)))
    return 0


def _cmd_mil(args) -> int:
    import torch

    from .run import run_benchmark
    from .splits import make_splits
    from .labels import read_labels
    from .train import TrainParams

    if args.threads:
        torch.set_num_threads(args.threads)
    # --epochs/--seed/--select-by/--device are evaluation.mil.* overrides
    cfg = config_from_args(args) if (args.config or args.task or Path("config.yaml").exists()) else None
    if cfg is None:  # plain paths, no config: the built-in evaluation.mil with the flags
        from ..config.evaluation import MilConfig
        mil = MilConfig(**{k.removeprefix("evaluation.mil."): v for k, v in flag_overrides(args).items()})
    else:
        mil = cfg.evaluation.mil
    models = [m.strip() for m in args.model.split(",") if m.strip()]
    if args.task:
        from ..paths import Layout
        from .workflow import config_task_splits, task_benchmark
        if not Layout(cfg).mil_splits_summary(args.task).exists():
            config_task_splits(cfg, args.task)
        for m in models:
            s = task_benchmark(cfg, args.task, args.encoder or cfg.features.encoder, m)
            _print(s)
        return 0
    if not (args.labels and args.features_dir and args.out):
        raise ConfigError("pathgen mil needs --labels, --features-dir and --out (or --task)")
    classes = _classes(args.classes, args.labels, args.target, args.slide_table)
    table = read_labels(args.labels, classes, target=args.target, slide_table=args.slide_table)
    split_paths = make_splits(table, classes, args.out / "splits", given=args.splits, folds=args.folds,
                              val_fraction=args.val_fraction, seed=mil.seed)
    slide_paths = {}
    if args.slides_dir:
        for p in sorted(args.slides_dir.rglob("*")):
            if p.is_file():
                slide_paths.setdefault(p.stem, p)
    params = TrainParams.from_config(mil)
    encoder = args.encoder or args.features_dir.name.removeprefix("features_")
    for m in models:
        s = run_benchmark(table, classes, args.out / "splits", args.features_dir, m, args.out / m, params,
                          task=args.labels.stem, encoder=encoder, max_memory_mb=mil.max_memory_mb,
                          heatmap_slides=mil.heatmap_slides, slide_paths=slide_paths)
        _print(s)
    log.debug("splits: %s", split_paths)
    return 0


def _print(s: dict) -> None:
    m, sd = s["mean"], s["sd"]
    print(f"{s['task']} {s['encoder']} {s['model']}: " +
          "  ".join(f"{k} {m[k]:.3f}±{sd[k]:.3f}" for k in m))
