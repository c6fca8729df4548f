"""Per-slide stages as declared objects, registered by name the way encoder kinds are.

A :class:`Stage` says what the chunk runner (:mod:`pathgen.runner.job`) needs to run it over a
chunk of slides, and what the rule needs at parse time to give the job everything in its
params (:mod:`pathgen.runner.params`):

* ``run(ctx, slide) -> dict``: the per-slide work (the same library call the stage's
  ``pathgen`` subcommand makes); returns a small summary for the state record;
* ``files(layout) -> {name: path}``: parse time, the slide's files as templates holding
  ``{slide}`` (the job formats them per member); ``outputs`` names those that must all exist
  for a finished record to be reused;
* ``settings(cfg)``: parse time, everything that shapes the outputs (the rerun trigger and
  the fingerprint's settings part); ``params(cfg)``: parse time, what else the job reads
  that shapes no output (e.g. how a model is served), given as further rule params;
* ``input_key(ctx, slide)``: what else shapes one slide's outputs (e.g. the slide file);
* ``needs_redo(record)``: a finished record that must still be redone;
* ``open(ctx)`` / ``close(ctx)``: chunk-level resources held across the slides (an encoder,
  a model server). ``open`` runs lazily, just before the first slide that has work, so a
  chunk whose slides are all fresh never loads a model; ``close`` always runs after
  ``open`` did, also when the job fails or is stopped;
* ``run_many(ctx, slides, report)``: optional, the chunk's slides in one go (captioning's
  single pipeline across a chunk); it calls ``report(slide, info_or_exception)`` as each
  slide finishes, and the runner writes that slide's record at once;
* ``after_chunk(ctx)``: bookkeeping once the chunk's slides are done.

Each stage lives in its area's package (``pathgen/<area>/chunk_stage.py``) and registers
itself with :func:`register_stage`; :func:`get_stage` imports only the module of the stage
asked for, so each rule's environment needs only what its own stage imports.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

# Stage name -> the module that declares it (imported on demand).
STAGE_MODULES = {
    "demo": "pathgen.demo.chunk_stage",
    "tile": "pathgen.tiling.chunk_stage",
    "features": "pathgen.features.chunk_stage",
    "select": "pathgen.selection.chunk_stage",
    "caption": "pathgen.captioning.chunk_stage",
}
# The per-slide stages in DAG order (status tables, reports).
STAGE_NAMES = tuple(STAGE_MODULES)
# The placeholders of Stage.files templates.
SLIDE, CHUNK = "{slide}", "{chunk}"


def _none(ctx, slide) -> None:
    return None


def _never(record: dict) -> bool:
    return False


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[Any, str], dict | None]
    files: Callable[[Any], dict]
    outputs: tuple[str, ...]
    settings: Callable[[Any], Any]
    upstream: str | None = None
    params: Callable[[Any], dict] | None = None
    input_key: Callable[[Any, str], Any] = _none
    needs_redo: Callable[[dict], bool] = _never
    open: Callable[[Any], None] | None = None
    close: Callable[[Any], None] | None = None
    run_many: Callable[[Any, list[str], Callable[[str, Any], None]], None] | None = None
    after_chunk: Callable[[Any], None] | None = None
    # the device a job will use (e.g. "auto", "cuda", "cpu"; None: never a GPU): a job whose
    # rule asks for a GPU and whose device means one claims a device slot of its own
    device: Callable[[Any], str | None] | None = None


STAGES: dict[str, Stage] = {}


def register_stage(stage: Stage) -> Stage:
    if stage.name not in STAGE_MODULES:
        raise ValueError(f"stage {stage.name!r} is not in pathgen.runner.stage.STAGE_MODULES")
    if stage.name in STAGES and STAGES[stage.name] is not stage:
        raise ValueError(f"stage {stage.name!r} registered twice")
    STAGES[stage.name] = stage
    return stage


def get_stage(name: str) -> Stage:
    """The declared stage ``name`` (its module imported on first use)."""
    if name not in STAGES:
        try:
            module = STAGE_MODULES[name]
        except KeyError:
            raise ValueError(f"unknown per-slide stage {name!r}; known: "
                             f"{', '.join(STAGE_MODULES)}") from None
        importlib.import_module(module)
    return STAGES[name]


def fill(template: str, slide: str = "", chunk: str = "") -> str:
    """A files() template for one slide / chunk (str.replace: ids may hold any character)."""
    return str(template).replace(SLIDE, slide).replace(CHUNK, chunk)
