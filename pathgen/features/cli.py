"""`pathgen features SLIDE --coords c.h5 --encoder NAME --out f.h5` and `pathgen encoders`."""

from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    from ..cli import add_config_args, add_config_flag

    p = subparsers.add_parser("features", help="Encode a slide's patches into a features HDF5",
                              description="Read every patch listed in a coords HDF5 and write "
                                          "their embeddings (CLAM/TRIDENT-readable HDF5).")
    p.add_argument("slide", help="slide file (SVS, tiled TIFF, or any OpenSlide format)")
    p.add_argument("--coords", required=True, help="coords HDF5 from `pathgen tile`")
    p.add_argument("--out", required=True, help="output features HDF5")
    add_config_flag(p, "--encoder", key="features.encoder", help="encoder name")
    add_config_flag(p, "--batch-size", key="features.batch_size", type=int)
    add_config_flag(p, "--workers", key="features.num_workers", type=int,
                    help="patch-reading processes")
    add_config_flag(p, "--device", key="features.device", help="auto | cpu | cuda | cuda:N")
    add_config_flag(p, "--dtype", key="features.dtype", choices=["float32", "float16"])
    add_config_flag(p, "--reader", key="features.reader", choices=["auto", "tiff", "openslide"])
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
    from ..tiling.h5io import CoordsFileError
    from ..wsi import ReadError, SlideError
    from .extract import extract_features, set_torch_threads

    cfg = config_from_args(args)  # --encoder, --batch-size, ... are features.* overrides
    fc = cfg.features
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
    print(encoders_table(cfg))
    return 0


def encoders_table(cfg) -> str:
    """`pathgen encoders`: name, kind, embedding dimension and µm/px of the model card (when
    the entry documents them; a CLIP's dimension shows once loaded), text tower, weights."""
    rows = [("", "name", "kind", "dim", "µm/px", "text", "arch", "weights")]
    for name, spec in sorted(cfg.all_encoders().items()):
        src = (spec.pretrained or "random init") + (" (gated)" if spec.gated else "")
        rows.append(("*" if name == cfg.features.encoder else " ", name, spec.kind,
                     str(spec.embed_dim or "-"), f"{spec.mpp:g}" if spec.mpp else "-",
                     "yes" if spec.has_text else "no", spec.arch or "-", src))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(" ".join(c.ljust(w) for c, w in zip(r, widths)) + " " + r[-1] for r in rows)
