"""Feature stage: encode every patch of a slide; the encoder is loaded once per chunk job."""

from __future__ import annotations


def outputs(L, slide):
    return [L.features(slide)]


def input_key(ctx, slide):
    return None  # the slide file and the grid are in the upstream (tile) fingerprint


def encoder(ctx):
    if "encoder" not in ctx.cache:
        from ..encoders import load_encoder
        from ..features.extract import set_torch_threads

        fc = ctx.cfg.features
        # reading workers take their own processes; torch gets the job's remaining cores
        set_torch_threads(max(1, ctx.threads - fc.num_workers))
        ctx.cache["encoder"] = load_encoder(ctx.cfg.encoder_spec(fc.encoder), device=fc.device,
                                            name=fc.encoder)
    return ctx.cache["encoder"]


def run(ctx, slide) -> dict:
    from ..features.extract import extract_features

    L = ctx.layout
    res = extract_features(ctx.slide_path(slide), L.coords(slide), L.features(slide),
                           encoder(ctx), ctx.cfg.features, progress=False)
    return {"n_patches": res["n_patches"]}
