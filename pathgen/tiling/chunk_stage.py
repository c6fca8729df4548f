"""Chunk stage `tile`: tissue segmentation + patch grid -> coords HDF5, QC JPEG, tissue GeoJSON."""

from __future__ import annotations

from ..runner.stage import SLIDE, Stage, register_stage
from ..runner.state import file_identity


def files(L) -> dict:
    return {"coords": L.coords(SLIDE), "qc": L.tiling_qc(SLIDE), "contours": L.contours(SLIDE)}


def settings(cfg):
    return cfg.tiling.model_dump(mode="json")  # every tiling setting


def input_key(ctx, slide):
    # the slide file itself (a fixed or replaced file changes size/mtime) and its mpp sources
    return [file_identity(ctx.slide_path(slide)), ctx.param("mpp").get(slide),
            ctx.param("default_mpp", None)]


def run(ctx, slide) -> dict:
    from ..config.tiling import TilingConfig
    from . import tile_slide

    mpp, source = ctx.param("mpp").get(slide, (None, ""))
    res = tile_slide(ctx.slide_path(slide), ctx.file("coords", slide),
                     TilingConfig.model_validate(ctx.settings), qc=ctx.file("qc", slide),
                     geojson=ctx.file("contours", slide), mpp_override=mpp,
                     mpp_override_source=source or "override",
                     default_mpp=ctx.param("default_mpp", None), slide_id=slide)
    return {"n_patches": res.n_patches, "mpp": res.mpp, "mpp_source": res.mpp_source}


STAGE = register_stage(Stage("tile", run, files, ("coords", "qc", "contours"), settings,
                             input_key=input_key))
