"""Parse time: the params of a chunk rule, so its job needs nothing but them and its inputs.

Glue (reads the whole config and the Layout). The rules call :func:`chunk_job_params` once
per chunk rule; the job rebuilds its :class:`~pathgen.runner.context.ChunkContext` from them.
"""

from __future__ import annotations

from ..config import PathgenConfig
from ..paths import Layout
from .stage import SLIDE, get_stage


def upstream_of(stage: str, cfg: PathgenConfig) -> str | None:
    """The stage whose per-slide records gate ``stage`` (tiling reads the slide file itself,
    unless the demo stage draws it)."""
    if stage == "tile":
        return "demo" if cfg.uses_demo else None
    return get_stage(stage).upstream


def chunk_files(stage: str, layout: Layout, upstream: str | None) -> dict[str, str]:
    """The stage's per-slide file templates plus the state records it reads and writes."""
    files = {k: str(v) for k, v in get_stage(stage).files(layout).items()}
    files[f"state:{stage}"] = str(layout.slide_state(stage, SLIDE))
    if upstream:
        files[f"state:{upstream}"] = str(layout.slide_state(upstream, SLIDE))
    return files


def chunk_job_params(stage: str, cfg: PathgenConfig, layout: Layout | None = None,
                     settings=None) -> dict:
    """``settings`` (fingerprinted), ``files``, ``upstream`` and ``on_slide_error`` of a chunk
    rule of ``stage`` (``settings`` given: e.g. a trained model's)."""
    layout, st = layout or Layout(cfg), get_stage(stage)
    upstream = upstream_of(stage, cfg)
    return {"stage": stage, "settings": st.settings(cfg) if settings is None else settings,
            "files": chunk_files(stage, layout, upstream), "upstream": upstream,
            "on_slide_error": cfg.on_slide_error, **(st.params(cfg) if st.params else {})}


def encoder_definition(cfg: PathgenConfig, name: str | None) -> dict | None:
    """An encoder's full definition as a params value (editing ``encoders.<name>`` reruns
    its users)."""
    return {"name": name, "spec": cfg.encoder_spec(name).model_dump(mode="json")} if name else None
