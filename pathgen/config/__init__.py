"""The one config schema, used by the Snakefile at start-up and by every CLI subcommand.

Load with :func:`load_config` (a YAML path) or :func:`validate_config` (a dict, e.g.
Snakemake's merged ``config``). Relative paths stay relative: they resolve against the
working directory of the run (the repo root when you run ``snakemake`` there).

The schema's defaults are the real-data defaults; the demo's settings are an overlay
(pathgen/data/demo.yaml) under the user's while the demo is the slide source. The layers,
their merge and each value's source: :mod:`pathgen.config.layers`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from .agents import AgentTrainingConfig, self_training_conflict
from .base import ConfigError, Section, format_validation_error
from .captioning import CaptioningConfig
from .cluster import ClusterConfig
from .dataset import DatasetConfig
from .evaluation import EvaluationConfig
from .features import EncoderSpec, FeaturesConfig, encoder_needs_text, known_encoders
from .inputs import DemoConfig, SlidesConfig
from .layers import (CONFIG_YAML, SET, Layer, Resolved, configfile_source, file_layer, resolve,
                     set_dotted, with_demo_overlay)
from .instruct import InstructConfig
from .resources import CHUNKED_RULES, RuleResources, default_resources
from .selection import SelectionConfig
from .tiling import TilingConfig
from .training import TrainingConfig

__all__ = ["PathgenConfig", "ConfigError", "load_config", "validate_config", "Section",
           "resolve_config", "config_layers", "set_dotted", "Layer", "Resolved", "SET",
           "CONFIG_YAML", "file_layer", "with_demo_overlay"]


class PathgenConfig(Section):
    results_dir: Path = Field(Path("results"), description="Root of all outputs.")
    slides: SlidesConfig = Field(default_factory=SlidesConfig)
    demo: DemoConfig = Field(default_factory=DemoConfig)
    tiling: TilingConfig = Field(default_factory=TilingConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    encoders: dict[str, EncoderSpec] = Field(default_factory=dict,
                                             description="Extra/overriding encoder definitions.")
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    captioning: CaptioningConfig = Field(default_factory=CaptioningConfig)
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    instruct: InstructConfig = Field(default_factory=InstructConfig)
    agents: AgentTrainingConfig = Field(default_factory=AgentTrainingConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    on_slide_error: Literal["quarantine", "fail"] = Field(
        "quarantine",
        description="A slide that fails a per-slide stage (unreadable file, no mpp, a stage "
                    "error): `quarantine` records why (`pathgen status`), finishes the rest of "
                    "its chunk and runs the aggregates on the slides that succeeded; `fail` "
                    "also finishes the chunk, then fails the job (strict mode).")
    resources: dict[str, RuleResources] = Field(
        default_factory=default_resources,
        description="Per-rule compute requests (threads, mem_mb, runtime, gpu, gpu_model, "
                    "slurm_partition, cpus_per_task). A rule's entry is merged over its built-in "
                    "defaults, so `extract_features: {threads: 1}` keeps `gpu: 1`.")

    @model_validator(mode="before")
    @classmethod
    def _merge_resources(cls, data):
        if isinstance(data, dict) and isinstance(data.get("resources"), dict):
            defaults = default_resources()
            merged = {}
            for rule, value in data["resources"].items():
                base = defaults.get(rule, defaults["default"]).model_dump()
                merged[rule] = {**base, **value} if isinstance(value, dict) else value
            data = {**data, "resources": merged}
        if isinstance(data, dict):
            # A local captioning model needs a GPU in the caption job; a model server does not.
            cap = data.get("captioning") or {}
            user_cap = (data.get("resources") or {}).get("caption") or {}
            agents = (cap.get("agents") or {}) if isinstance(cap, dict) else {}
            local = isinstance(cap, dict) and (cap.get("backend") == "transformers" or any(
                isinstance(a, dict) and a.get("backend") == "transformers"
                for a in (agents.values() if isinstance(agents, dict) else ())))
            if local and isinstance(user_cap, dict) and "gpu" not in user_cap:
                res = dict(data.get("resources") or {})
                base = default_resources()["caption"].model_dump()
                res["caption"] = {**base, **user_cap, "gpu": 1}
                data = {**data, "resources": res}
        return data

    @model_validator(mode="after")
    def _checks(self):
        if not self.demo.enabled and self.slides.dir is None and self.slides.sample_sheet is None:
            raise ValueError("no slides: set slides.dir or slides.sample_sheet, or demo.enabled: true")
        if self.features.encoder not in self.all_encoders():
            raise ValueError(f"features.encoder '{self.features.encoder}' is not defined; known "
                             f"encoders: {', '.join(sorted(self.all_encoders()))}")
        if (why := self_training_conflict(self)) is not None:
            raise ValueError(why)
        if (why := self._text_tower_refusal()) is not None:
            raise ValueError(why)
        # Keep the built-in per-rule defaults for rules the user did not mention.
        for name, res in default_resources().items():
            self.resources.setdefault(name, res)
        return self

    def text_encoder_settings(self) -> list[tuple[str, str, str]]:
        """(setting, encoder name, use) of every encoder this config embeds text with: the
        prompt retrieval of selection (its text tower and the features it scores, when
        selection.prompt_top_k > 0), the zero-shot models named in evaluation.zeroshot.models
        and the caption alignment filter. Vision-only encoders are refused there."""
        out = []
        if self.selection.prompt_top_k > 0:
            if self.selection.text_encoder:
                out.append(("selection.text_encoder", self.selection.text_encoder,
                            "selection's prompt retrieval (selection.prompt_top_k > 0)"))
            out.append(("features.encoder", self.features.encoder,
                        "selection's prompt retrieval, which scores these features against the "
                        "prompts' text embeddings (selection.prompt_top_k > 0; 0 = k-means "
                        "prototypes only)"))
        zs = self.evaluation.zeroshot
        out += [(f"evaluation.zeroshot.models[{i}]", m, "zero-shot classification")
                for i, m in enumerate(zs.models)]
        if self.captioning.filters.alignment_encoder:
            out.append(("captioning.filters.alignment_encoder",
                        self.captioning.filters.alignment_encoder, "the caption alignment filter"))
        return out

    def _text_tower_refusal(self) -> str | None:
        known = self.all_encoders()
        for setting, name, use in self.text_encoder_settings():
            if name in known and (why := encoder_needs_text(known[name], name, setting, use)):
                return why
        return None

    @property
    def uses_demo(self) -> bool:
        """The run uses the embedded demo slides (demo enabled and no real slides configured)."""
        return self.demo.enabled and self.slides.dir is None and self.slides.sample_sheet is None

    def all_encoders(self) -> dict[str, EncoderSpec]:
        """The built-in encoders with this config's `encoders:` over them."""
        return known_encoders(self.encoders)

    def encoder_spec(self, name: str | None = None) -> EncoderSpec:
        name = name or self.features.encoder
        try:
            return self.all_encoders()[name]
        except KeyError:
            raise ConfigError(f"unknown encoder '{name}'; known: "
                              f"{', '.join(sorted(self.all_encoders()))}") from None

    def rule_resources(self, rule: str) -> RuleResources:
        r = self.resources.get(rule, self.resources["default"])
        if rule == "caption":  # a GPU exactly when the job runs a model itself
            gpus = self.captioning.gpus_needed()
            if gpus != (r.gpu or 0):
                r = r.model_copy(update={"gpu": max(gpus, r.gpu or 0) if gpus else 0})
        return r

    def chunk_size(self) -> int:
        """Slides per chunk: cluster.chunk_size, capped so the heaviest per-slide rule fits
        cluster.max_job_minutes."""
        heaviest = max(self.rule_resources(r).runtime for r in CHUNKED_RULES)
        return self.cluster.effective_chunk_size(heaviest)


def validate_config(data: dict[str, Any] | None, source: str = "config") -> PathgenConfig:
    """Validate a settings mapping (e.g. Snakemake's merged ``config``) as the workflow and the
    CLI read it: over the built-in defaults, with the demo overlay beneath it while it runs the
    demo (:func:`pathgen.config.layers.with_demo_overlay`); raise :class:`ConfigError` with
    user-facing text. :func:`resolve_config` also names each value's source."""
    try:
        return PathgenConfig.model_validate(with_demo_overlay(data or {}))
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, PathgenConfig, source)) from None


def config_layers(path: str | Path | None = None, configfiles: list[str | Path] = (),
                  overrides: dict[str, Any] | None = None) -> list[Layer]:
    """The CLI's layers: ``path`` (default ./config.yaml when present), each ``configfiles``
    file over it (as ``snakemake --configfile``), then the dotted ``overrides`` (--set)."""
    layers = []
    if path is not None:
        layers.append(file_layer(path, f"--config {path}"))
    elif Path(CONFIG_YAML).exists():
        layers.append(file_layer(CONFIG_YAML, CONFIG_YAML))
    layers += [file_layer(f, configfile_source(f)) for f in configfiles or ()]
    if overrides:
        layers.append(Layer(SET, dict(overrides), dotted=True))
    return layers


def resolve_config(layers: list[Layer], demo: bool | None = None) -> Resolved:
    """The layers over the built-ins (and the demo overlay), validated, with each value's
    source (:func:`pathgen.config.layers.resolve`)."""
    what = " + ".join(layer.path for layer in layers if layer.path) or "defaults"
    return resolve(layers, what, demo)


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None,
                configfiles: list[str | Path] = ()) -> PathgenConfig:
    """Read YAML (default: ./config.yaml if present), overlay ``configfiles`` (as
    ``snakemake --configfile``), apply dotted overrides, validate."""
    return resolve_config(config_layers(path, configfiles, overrides)).config
