"""What a chunk job knows: built from the rule's params and inputs only (never the whole
workflow config), so every setting a job reads is a rerun trigger."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import ConfigError
from .stage import fill


def _named(obj) -> dict:
    """A Snakemake Namedlist (or a stand-in namespace) as a dict."""
    if obj is None:
        return {}
    return dict(obj.items()) if hasattr(obj, "items") else dict(vars(obj))


@dataclass
class ChunkContext:
    stage: str
    chunk: str
    members: dict[str, str | None]       # slide -> its slide file (None: not in the slide list)
    settings: Any = None                 # the stage's fingerprinted settings (params.settings)
    files: dict[str, str] = field(default_factory=dict)   # name -> template with {slide}/{chunk}
    params: dict = field(default_factory=dict)            # every param of the rule
    inputs: dict = field(default_factory=dict)            # the rule's named inputs
    resources: dict = field(default_factory=dict)         # the job's resources (gpu, ...)
    threads: int = 1
    log_path: str | None = None
    cache: dict = field(default_factory=dict)  # per-job state of a stage (encoder, server, ...)

    @classmethod
    def from_job(cls, stage: str, sm) -> ChunkContext:
        """From Snakemake's ``snakemake`` object of a chunk rule's script."""
        params = _named(sm.params)
        resources = {k: v for k, v in _named(getattr(sm, "resources", None)).items()
                     if not k.startswith("_")}
        return cls(stage, sm.wildcards.chunk, dict(params["members"]), params.get("settings"),
                   dict(params.get("files") or {}), params, _named(sm.input), resources,
                   sm.threads, str(sm.log[0]))

    def file(self, name: str, slide: str = "") -> Path:
        """File ``name`` of ``slide`` (or of the chunk) from the rule's ``files`` param."""
        try:
            template = self.files[name]
        except KeyError:
            raise ConfigError(f"{self.stage} {self.chunk}: the rule's params.files has no "
                              f"{name!r} (has {', '.join(sorted(self.files))}); the rule and "
                              "pathgen are from different versions: rerun snakemake") from None
        return Path(fill(template, slide, self.chunk))

    def state_file(self, stage: str, slide: str) -> Path:
        return self.file(f"state:{stage}", slide)

    def param(self, name: str, default: Any = ConfigError):
        if name in self.params:
            return self.params[name]
        if default is ConfigError:
            raise ConfigError(f"{self.stage} {self.chunk}: the rule gives no params.{name}; the "
                              "rule and pathgen are from different versions: rerun snakemake")
        return default

    def slide_path(self, slide: str) -> Path:
        """The member's slide file (the rule's ``members`` param, made at parse time)."""
        path = self.members.get(slide)
        if not path:
            raise ConfigError(f"slide {slide!r} is in {self.chunk} but not in this run's slide "
                              "list (slides.dir / slides.sample_sheet)")
        return Path(path)
