"""`pathgen tile`: tissue segmentation + patch grid for one slide, on plain paths."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..wsi import SlideError


def register(subparsers) -> None:
    from ..cli import add_config_args

    p = subparsers.add_parser(
        "tile", help="Segment tissue and write patch coordinates (HDF5) for one slide",
        description="Segment tissue on a low-resolution level and write the level-0 patch grid "
                    "as a CLAM/TRIDENT-compatible coords HDF5; optionally a QC JPEG and the "
                    "tissue contours as QuPath-readable GeoJSON.")
    p.add_argument("slide", type=Path, help="Slide file (anything OpenSlide reads)")
    p.add_argument("--out", type=Path, required=True, help="Output coords .h5")
    p.add_argument("--qc", type=Path, default=None, help="Write a QC JPEG here")
    p.add_argument("--geojson", type=Path, default=None, help="Write tissue contours GeoJSON here")
    p.add_argument("--mpp", type=float, default=None,
                   help="Level-0 µm/px for this slide (wins over metadata and config)")
    p.add_argument("--slide-id", default=None, help="Name stored in the file (default: file stem)")
    add_config_args(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ..cli import config_from_args
    from ..slide_tables import SlideRecord, slide_id_from_path
    from .pipeline import mpp_override_for, tile_slide

    cfg = config_from_args(args)
    slide_id = args.slide_id or slide_id_from_path(args.slide)
    override, source = args.mpp, "--mpp"
    if override is None:
        override, source = mpp_override_for(cfg, SlideRecord(slide_id, args.slide))
    try:
        res = tile_slide(args.slide, args.out, cfg.tiling, qc=args.qc, geojson=args.geojson,
                         mpp_override=override, mpp_override_source=source or "--mpp",
                         default_mpp=cfg.slides.default_mpp, slide_id=slide_id)
    except SlideError as err:
        print(f"pathgen tile: {err}", file=sys.stderr)
        return 1
    print(f"{res.slide_id}: {res.n_patches} patches ({res.patch_size_level0} px at level 0, "
          f"mpp {res.mpp:g} from {res.mpp_source}) -> {args.out}")
    return 0
