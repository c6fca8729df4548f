"""Patch features of a CLIP this workflow trains (the main one and its baselines), for the MIL
benchmarks: the `features` chunk stage run with that model as the encoder, into its own
features_<model>/ folder (state records, outputs and chunk outcomes all follow the encoder).

What shapes those features comes from the rule's params (rules/common.smk
get_model_feature_settings: the model's name and EncoderSpec, the features settings), not from
the job re-reading the config. A retrained model has new weights under the same path, so the
weights' content hash is added to them: a rerun after retraining re-extracts, an unchanged
model is reused.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from ..config import ConfigError
from ..config.features import EncoderSpec, FeaturesConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelFeatures:
    """A trained model's feature job, resolved from the rule's params."""
    name: str               # the encoder name (features_<name>/)
    spec: EncoderSpec       # its definition (`encoders.<name>`)
    features: FeaturesConfig  # the features settings, with encoder = name
    settings: dict          # what the chunk fingerprints hold: the params + the weights' hash


def resolve_model_features(settings: dict, weights: str | Path) -> ModelFeatures:
    """``settings``: the rule's params.settings ({encoder, encoder_spec, features});
    ``weights``: the trained final.pt the rule waits for (its hash joins the settings)."""
    missing = [k for k in ("encoder", "encoder_spec", "features") if k not in settings]
    if missing:
        raise ConfigError(f"extract_model_features: params.settings lacks {missing} (rules/common.smk "
                          "get_model_feature_settings gives encoder, encoder_spec and features)")
    name = settings["encoder"]
    spec = EncoderSpec.model_validate(settings["encoder_spec"])
    features = FeaturesConfig.model_validate({**settings["features"], "encoder": name})
    if spec.pretrained is None or Path(spec.pretrained).resolve() != Path(weights).resolve():
        log.warning("encoders.%s.pretrained is %s, but this workflow trains its weights into %s: "
                    "the features are computed from the former, the rerun trigger hashes the "
                    "latter; point encoders.%s.pretrained at %s", name, spec.pretrained, weights,
                    name, weights)
    return ModelFeatures(name, spec, features, {**settings, "weights_sha256": weights_sha256(weights)})


def weights_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()
