"""Tiling stage: tissue segmentation + patch grid -> coords HDF5, QC JPEG, tissue GeoJSON."""

from __future__ import annotations

from ..slide_state import file_identity


def outputs(L, slide):
    return [L.coords(slide), L.tiling_qc(slide), L.contours(slide)]


def input_key(ctx, slide):
    # the slide file itself (a fixed or replaced file changes size/mtime) and its mpp sources
    return [file_identity(ctx.slide_path(slide)), ctx.extra["mpp"].get(slide),
            ctx.extra.get("default_mpp")]


def run(ctx, slide) -> dict:
    from ..config.tiling import TilingConfig
    from ..tiling import tile_slide

    L = ctx.layout
    mpp, source = ctx.extra["mpp"].get(slide, (None, ""))
    res = tile_slide(ctx.slide_path(slide), L.coords(slide), TilingConfig.model_validate(ctx.settings),
                     qc=L.tiling_qc(slide), geojson=L.contours(slide), mpp_override=mpp,
                     mpp_override_source=source or "override",
                     default_mpp=ctx.extra.get("default_mpp"), slide_id=slide)
    return {"n_patches": res.n_patches, "mpp": res.mpp, "mpp_source": res.mpp_source}
