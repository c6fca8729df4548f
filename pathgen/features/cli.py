"""`pathgen features SLIDE --coords c.h5 --encoder NAME --out f.h5` and `pathgen encoders`."""

from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    from ..cli import add_config_args

    p = subparsers.add_parser("features", help="Encode a slide's patches into a features HDF5",
                              description="Read every patch listed in a coords HDF5 and write "
                                          "their embeddings (CLAM/TRIDENT-readable HDF5).")
    p.add_argument("slide", help="slide file (SVS, tiled TIFF, or any OpenSlide format)")
    p.add_argument("--coords", required=True, help="coords HDF5 from `pathgen tile`")
    p.add_argument("--out", required=True, help="output features HDF5")
    p.add_argument("--encoder", default=None, help="encoder name (default: features.encoder)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--workers", type=int, default=None, help="patch-reading processes")
    p.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N")
    p.add_argument("--dtype", choices=["float32", "float16"], default=None)
    p.add_argument("--reader", choices=["auto", "tiff", "openslide"], default=None)
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    add_config_args(p)
    p.set_defaults(func=_run)

    e = subparsers.add_parser("encoders", help="List the encoders the config knows")
    add_config_args(e)
    e.set_defaults(func=_list)


def _run(args: argparse.Namespace) -> int:
    from ..cli import config_from_args
    from ..encoders import EncoderError, load_encoder
    from ..logs import progress_enabled
    from ..reading import ReadError
    from ..tiling.h5io import CoordsFileError
    from ..wsi import SlideError
    from .extract import extract_features, set_torch_threads

    cfg = config_from_args(args)
    fc = cfg.features.model_copy(update={k: v for k, v in {
        "encoder": args.encoder, "batch_size": args.batch_size, "num_workers": args.workers,
        "device": args.device, "dtype": args.dtype, "reader": args.reader}.items() if v is not None})
    set_torch_threads(args.threads)
    try:
        enc = load_encoder(fc.encoder, cfg, fc.device)  # unknown names list the known ones
        summary = extract_features(args.slide, args.coords, args.out, enc, fc,
                                   progress=progress_enabled())
    except (EncoderError, CoordsFileError, SlideError, ReadError) as err:
        print(f"pathgen features: {err}", file=sys.stderr)
        return 2
    print(f"{summary['n_patches']} patches -> {summary['out']} ({summary['seconds']:.1f} s)")
    return 0


def _list(args: argparse.Namespace) -> int:
    from ..cli import config_from_args

    cfg = config_from_args(args)
    for name, spec in sorted(cfg.all_encoders().items()):
        mark = "*" if name == cfg.features.encoder else " "
        src = spec.pretrained or "random init"
        print(f"{mark} {name:<20} {spec.kind:<10} {spec.arch or '-':<16} {src}")
    return 0
