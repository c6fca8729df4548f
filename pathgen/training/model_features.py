"""Patch features of a CLIP this workflow trains (the main one and its baselines), for the MIL
benchmarks: the `features` chunk stage run with that model as the encoder, into its own
features_<model>/ folder (state records, outputs and chunk outcomes all follow the encoder).

A retrained model has new weights under the same path, so the weights' content hash is part of
what shapes the features: a rerun after retraining re-extracts, an unchanged model is reused.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..config import ConfigError, PathgenConfig


def with_encoder(cfg: PathgenConfig, model: str) -> PathgenConfig:
    """The config with ``features.encoder = model`` (everything else unchanged)."""
    if model not in cfg.all_encoders():
        raise ConfigError(f"encoder '{model}' is not defined: declare it under `encoders` "
                          "(kind open_clip, its arch and training/.../final.pt)")
    return cfg.model_copy(update={"features": cfg.features.model_copy(update={"encoder": model})})


def weights_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def run_model_features(sm) -> dict:
    """Entry point of rule extract_model_features (``sm``: Snakemake's `snakemake` object)."""
    from ..chunk_run import StageContext, run_chunk
    from ..config import validate_config
    from ..logs import setup_logging

    setup_logging(sm.log[0])
    cfg = with_encoder(validate_config(sm.config, "the workflow config"), sm.wildcards.model)
    params = dict(sm.params.items())
    settings = {**params["settings"], "weights_sha256": weights_sha256(sm.input.weights)}
    ctx = StageContext(cfg, settings=settings, extra=params, threads=sm.threads,
                       log_path=str(sm.log[0]))
    return run_chunk("features", sm.wildcards.chunk, list(params["members"]), ctx, sm.output.done,
                     on_error=cfg.on_slide_error)
