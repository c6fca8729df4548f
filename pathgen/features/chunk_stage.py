"""Chunk stage `features`: encode every patch of a slide; the encoder is loaded once per job
(the stage's `open` hook, only when some slide has work)."""

from __future__ import annotations

from ..runner.stage import SLIDE, Stage, register_stage


def files(L) -> dict:
    return {"features": L.features(SLIDE), "coords": L.coords(SLIDE)}


def settings(cfg):
    """The encoder definition and every features setting: a change re-runs the job."""
    return {"encoder": cfg.features.encoder,
            "encoder_spec": cfg.encoder_spec().model_dump(mode="json"),
            "features": cfg.features.model_dump(mode="json")}


def sections(settings: dict):
    """(features section, encoder name, encoder spec) from the settings param."""
    from ..config.features import EncoderSpec, FeaturesConfig

    fc = FeaturesConfig.model_validate(settings["features"])
    return fc, settings["encoder"], EncoderSpec.model_validate(settings["encoder_spec"])


def open_encoder(ctx) -> None:
    from ..encoders import load_encoder
    from .extract import set_torch_threads

    fc, name, spec = sections(ctx.settings)
    # reading workers take their own processes; torch gets the job's remaining cores
    set_torch_threads(max(1, ctx.threads - fc.num_workers))
    ctx.cache["features"] = fc
    ctx.cache["encoder"] = load_encoder(spec, device=fc.device, name=name)


def close_encoder(ctx) -> None:
    ctx.cache.pop("encoder", None)


def run(ctx, slide) -> dict:
    from .extract import extract_features

    res = extract_features(ctx.slide_path(slide), ctx.file("coords", slide),
                           ctx.file("features", slide), ctx.cache["encoder"],
                           ctx.cache["features"], progress=False)
    return {"n_patches": res["n_patches"]}


STAGE = register_stage(Stage("features", run, files, ("features",), settings, upstream="tile",
                             open=open_encoder, close=close_encoder,
                             device=lambda ctx: ctx.settings["features"]["device"]))
