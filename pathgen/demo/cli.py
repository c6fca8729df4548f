"""`pathgen demo-slides`, `pathgen demo-benchmark`, `pathgen demo-large-slide`."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from ..cli import add_config_args, add_config_flag, config_from_args

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo-slides", help="Generate the synthetic Aperio demo slides, ground-truth "
                                           "GeoJSON and slide_labels.csv")
    add_config_args(p)
    add_config_flag(p, "--out-dir", key="demo.out_dir", type=Path)
    add_config_flag(p, "--n-slides", key="demo.n_slides", type=int)
    add_config_flag(p, "--seed", key="demo.seed", type=int)
    p.add_argument("--slide", action="append", default=[], metavar="ID",
                   help="Only this slide id (repeatable), e.g. demo_003")
    p.add_argument("--force", action="store_true", help="Redraw slides that already exist")
    p.set_defaults(func=_slides)

    b = sub.add_parser("demo-benchmark", help="Cut the patch-level zero-shot benchmark from the "
                                              "holdout demo slides")
    add_config_args(b)
    add_config_flag(b, "--out-dir", key="demo.out_dir", type=Path, help="Demo folder")
    b.add_argument("--output", type=Path, help="Benchmark folder (default <demo.out_dir>/zeroshot)")
    b.set_defaults(func=_benchmark)

    g = sub.add_parser("demo-large-slide", help="Write a large streamed SVS for read benchmarks")
    g.add_argument("path", type=Path)
    g.add_argument("--width", type=int, default=65536)
    g.add_argument("--height", type=int, default=49152)
    g.add_argument("--mpp", type=float, default=0.25)
    g.add_argument("--tissue-fraction", type=float, default=0.25)
    g.add_argument("--seed", type=int, default=0)
    g.set_defaults(func=_large)


def _slides(args) -> int:
    from .generate import generate_demo

    cfg = config_from_args(args)  # --out-dir, --n-slides, --seed are demo.* overrides
    done = generate_demo(cfg.demo, args.slide or None, force=args.force)
    print(f"{len(done)} demo slides in {cfg.demo.out_dir / 'slides'}")
    return 0


def _benchmark(args) -> int:
    from ..paths import Layout
    from .benchmark import demo_benchmark
    from .workflow import holdout_sources

    cfg = config_from_args(args)
    src = holdout_sources(cfg)
    info = demo_benchmark(cfg.demo, cfg.tiling, src["slides"], src["regions"],
                          args.output or Layout(cfg).demo_zeroshot_dir)
    print(json.dumps(info["counts"]))
    return 0


def _large(args) -> int:
    from .large import make_large_slide

    info = make_large_slide(args.path, args.width, args.height, args.mpp, args.tissue_fraction, args.seed)
    print(json.dumps({k: info[k] for k in ("path", "dimensions", "mpp")}))
    return 0
