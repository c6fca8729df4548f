"""`pathgen zeroshot` (one benchmark x model) and `pathgen zeroshot-table`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..cli import add_config_args, add_config_flag, config_from_args


def _add_benchmark_source(p) -> None:
    """Config options + which benchmark: a declared one, or a folder with its layout/preset."""
    add_config_args(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--benchmark", help="Name under evaluation.zeroshot.benchmarks.")
    src.add_argument("--data", type=Path, help="Dataset folder (ad-hoc benchmark).")
    p.add_argument("--name", default=None, help="Benchmark name for --data (default: folder name).")
    p.add_argument("--preset", default=None, help="Definition from pathgen/data/benchmarks.yaml.")
    p.add_argument("--layout", default=None,
                   choices=["imagefolder", "csv", "pcam_h5", "sicap", "wsss4luad"])


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "zeroshot", help="Zero-shot classification of a patch benchmark with one or more models",
        description="Either --benchmark NAME (declared in evaluation.zeroshot.benchmarks) or "
                    "--data DIR with --layout/--preset. Writes results_<prompting>.json "
                    "(CLIP_benchmark schema), predictions and confusion matrices.")
    _add_benchmark_source(p)
    p.add_argument("--model", action="append", default=None,
                   help="Encoder name (repeatable; default: evaluation.zeroshot.models).")
    add_config_flag(p, "--prompting", key="evaluation.zeroshot.prompting", multiple=True,
                    choices=["single", "ensemble"], help="Repeatable.")
    add_config_flag(p, "--results-dir", key="results_dir")
    p.add_argument("--max-images", type=int, default=None, help="Stratified subsample.")
    add_config_flag(p, "--bootstrap", key="evaluation.zeroshot.bootstrap", type=int,
                    help="Bootstrap resamples.")
    add_config_flag(p, "--device", key="evaluation.zeroshot.device")
    p.set_defaults(func=_run)

    e = subparsers.add_parser(
        "zeroshot-export", help="Export a benchmark (and models) for the CLIP_benchmark CLI",
        description="Writes <results>/eval/clip_benchmark/wds/<benchmark>/ (CLIP_benchmark's "
                    "wds layout: test/{0..N-1}.tar + nshards.txt, classnames.txt, "
                    "zeroshot_classification_templates.txt, ensemble_templates.json) and, per "
                    "--model that stock open_clip cannot build, an open_clip local-dir: folder; "
                    "prints the `clip_benchmark eval` commands.")
    _add_benchmark_source(e)
    e.add_argument("--model", action="append", default=[],
                   help="Encoder name to export with its command (repeatable).")
    add_config_flag(e, "--results-dir", key="results_dir")
    e.add_argument("--max-images", type=int, default=None, help="Stratified subsample.")
    e.add_argument("--shard-size", type=int, default=1000, help="Samples per tar shard.")
    e.set_defaults(func=_export)

    t = subparsers.add_parser("zeroshot-table", help="Combine zero-shot results JSONs into a table")
    add_config_args(t)
    t.add_argument("results", nargs="*", type=Path,
                   help="results_*.json files (default: all under <results>/eval/zeroshot)")
    t.add_argument("--out", type=Path, default=None, help="Output stem (.csv and .md are written).")
    t.set_defaults(func=_table)


def _run(args: argparse.Namespace) -> int:
    from .workflow import evaluate_benchmark, model_names

    cfg = config_from_args(args)  # --prompting, --bootstrap, --device, --results-dir included
    name = _benchmark_from_args(args, cfg)
    for model in args.model or model_names(cfg):
        results = evaluate_benchmark(cfg, name, model)
        for mode, r in results.items():
            m = r["metrics"]
            ci = r["ci95"].get("balanced_accuracy")
            print(f"{name}\t{model}\t{mode}\tacc={m['acc1']:.4f}\tbal_acc={m['balanced_accuracy']:.4f}"
                  + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "")
                  + f"\twF1={m['weighted_f1']:.4f}\tAUROC={m['macro_auroc']:.4f}")
    return 0


def _benchmark_from_args(args: argparse.Namespace, cfg) -> str:
    """The benchmark's name; a --data folder is declared on the fly."""
    from ..config.evaluation import ZeroShotBenchmark

    zs = cfg.evaluation.zeroshot
    if args.data is None:
        if args.max_images and args.benchmark in zs.benchmarks:
            zs.benchmarks[args.benchmark].max_images = args.max_images
        return args.benchmark
    name = args.name or args.data.name
    zs.benchmarks = {**zs.benchmarks, name: ZeroShotBenchmark(
        root=args.data, preset=args.preset, layout=args.layout, max_images=args.max_images)}
    return name


def _export(args: argparse.Namespace) -> int:
    from .workflow import config_export

    if args.shard_size < 1:
        raise SystemExit("--shard-size must be >= 1")
    cfg = config_from_args(args)
    info = config_export(cfg, _benchmark_from_args(args, cfg), args.model, args.shard_size)
    print(f"{info['dataset']}: {info['n_images']} images in {info['n_shards']} shards")
    for model, cmds in info["commands"].items():
        for mode, cmd in cmds.items():
            print(f"# {model} ({mode})\n{cmd}")
    return 0


def _table(args: argparse.Namespace) -> int:
    from ..paths import Layout
    from .files import table_files
    from .report import write_table

    L = Layout(config_from_args(args))
    files = args.results or L.zeroshot_results_found()
    if not files:
        raise FileNotFoundError(f"no zero-shot results under {L.zeroshot_dir}; run `pathgen "
                                "zeroshot` first")
    out = table_files(args.out) if args.out else L.zeroshot_table()
    write_table(files, out["csv"], out["md"])
    print(out["md"].read_text())
    return 0
