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
        ctx.cache["encoder"] = load_encoder(fc.encoder, ctx.cfg, fc.device)
    return ctx.cache["encoder"]


def run(ctx, slide) -> dict:
    from ..features.extract import extract_features

    fc, L = ctx.cfg.features, ctx.layout
    res = extract_features(ctx.slide_path(slide), L.coords(slide), L.features(slide),
                           encoder=encoder(ctx), cfg=ctx.cfg, batch_size=fc.batch_size,
                           num_workers=fc.num_workers, device=fc.device, dtype=fc.dtype,
                           reader=fc.reader, tile_cache_mb=fc.tile_cache_mb, progress=False)
    return {"n_patches": res["n_patches"]}
