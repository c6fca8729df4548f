"""Demo stage: draw one synthetic Aperio slide and its ground-truth regions."""

from __future__ import annotations


def outputs(L, slide):
    return [L.demo_slide(slide), L.demo_regions(slide)]


def input_key(ctx, slide):
    return slide  # a demo slide is a function of its index and the settings


def run(ctx, slide) -> dict:
    from ..demo.generate import generate_one

    L = ctx.layout
    info = generate_one(ctx.cfg.demo, slide, L.demo_slide(slide), L.demo_regions(slide))
    return {k: info[k] for k in ("label", "split") if k in info}
