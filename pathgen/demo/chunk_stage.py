"""Chunk stage `demo`: draw one synthetic Aperio slide and its ground-truth regions."""

from __future__ import annotations

from ..runner.stage import SLIDE, Stage, register_stage

# What shapes one demo slide: not n_slides, the holdout share or the benchmark settings, so
# growing the cohort never redraws a slide (pathgen/demo/cohort.py).
SLIDE_KEYS = {"seed", "width_px", "height_px", "mpp", "app_mag", "tile_size", "jpeg_quality"}


def files(L) -> dict:
    return {"slide": L.demo_slide(SLIDE), "regions": L.demo_regions(SLIDE)}


def settings(cfg):
    return cfg.demo.model_dump(mode="json", include=SLIDE_KEYS)


def params(cfg) -> dict:
    """The holdout share (a slide's caption/holdout split; it draws no differently)."""
    return {"holdout_fraction": cfg.demo.holdout_fraction}


def input_key(ctx, slide):
    return slide  # a demo slide is a function of its index and the settings


def run(ctx, slide) -> dict:
    from ..config.inputs import DemoConfig
    from .generate import generate_one

    demo = DemoConfig.model_validate({**ctx.settings,
                                      "holdout_fraction": ctx.param("holdout_fraction")})
    info = generate_one(demo, slide, ctx.file("slide", slide), ctx.file("regions", slide))
    return {k: info[k] for k in ("label", "split") if k in info}


STAGE = register_stage(Stage("demo", run, files, ("slide", "regions"), settings,
                             params=params, input_key=input_key))
