"""Where every stage writes, in one place (the Snakefile and the CLI both use it).

Folder names carry the parameters that shape their content (tiling geometry, encoder,
captioning backend), TRIDENT-style, so two settings never overwrite each other and a
change of encoder re-runs features but not tiling.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .config import PathgenConfig


@dataclass(frozen=True)
class Layout:
    cfg: PathgenConfig

    # -- roots -----------------------------------------------------------------------
    @property
    def root(self) -> Path:
        return self.cfg.results_dir

    @property
    def tiling_tag(self) -> str:
        return self.cfg.tiling.tag()

    @property
    def encoder(self) -> str:
        return self.cfg.features.encoder

    # -- demo --------------------------------------------------------------------------
    @property
    def demo_dir(self) -> Path:
        return self.cfg.demo.out_dir

    def demo_slide(self, slide: str) -> Path:
        return self.demo_dir / "slides" / f"{slide}.svs"

    @property
    def demo_labels(self) -> Path:
        """CSV case_id,slide_id,label,split (CLAM dataset format + a split column)."""
        return self.demo_dir / "slide_labels.csv"

    def demo_regions(self, slide: str) -> Path:
        """GeoJSON FeatureCollection of ground-truth regions (property `classification`)."""
        return self.demo_dir / "regions" / f"{slide}.geojson"

    def demo_holdout_ids(self, slide_ids: list[str]) -> list[str]:
        """Demo slides kept out of captioning and CLIP training (they feed the zero-shot set);
        stable as demo.n_slides grows (pathgen/demo/cohort.py)."""
        from .demo.cohort import demo_holdout_ids

        d = self.cfg.demo
        held = set(demo_holdout_ids(d.n_slides, d.holdout_fraction, d.seed))
        return [s for s in slide_ids if s in held]

    @property
    def using_demo(self) -> bool:
        return self.cfg.uses_demo

    def holdout_ids(self, slide_ids: list[str]) -> list[str]:
        """Held-out slides for this run: the demo holdout when running the demo, else none."""
        return self.demo_holdout_ids(slide_ids) if self.using_demo else []

    # -- tiling ------------------------------------------------------------------------
    def tiles_dir(self) -> Path:
        return self.root / "tiles" / self.tiling_tag

    def coords(self, slide: str) -> Path:
        return self.tiles_dir() / "coords" / f"{slide}.h5"

    def tiling_qc(self, slide: str) -> Path:
        return self.tiles_dir() / "qc" / f"{slide}.jpg"

    def contours(self, slide: str) -> Path:
        return self.tiles_dir() / "contours" / f"{slide}.geojson"

    # -- features ----------------------------------------------------------------------
    def features_dir(self, encoder: str | None = None) -> Path:
        return self.tiles_dir() / f"features_{encoder or self.encoder}"

    def features(self, slide: str, encoder: str | None = None) -> Path:
        return self.features_dir(encoder) / f"{slide}.h5"

    # -- selection / captions ----------------------------------------------------------
    def selection_dir(self) -> Path:
        return self.features_dir() / "selection"

    def selection(self, slide: str) -> Path:
        return self.selection_dir() / f"{slide}.csv"

    def selection_patches(self, slide: str) -> Path:
        return self.selection_dir() / "patches" / slide

    @cached_property
    def _captions_tag(self) -> str:
        # The tag hashes the prompt templates (file reads): compute it once per run, not per job.
        return self.cfg.captioning.tag()

    def captions_dir(self) -> Path:
        return self.features_dir() / f"captions_{self._captions_tag}"

    def captions(self, slide: str) -> Path:
        return self.captions_dir() / f"{slide}.jsonl"

    # -- aggregates ----------------------------------------------------------------------
    @property
    def dataset_dir(self) -> Path:
        return self.root / "dataset"

    @property
    def training_dir(self) -> Path:
        return self.root / "training"

    @property
    def eval_dir(self) -> Path:
        return self.root / "eval"

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    # -- slide chunks and per-slide state (pathgen/chunks.py, pathgen/slide_state.py) ------
    @property
    def chunk_registry(self) -> Path:
        """TSV slide_id, chunk: stable chunk membership, appended as slides are added."""
        return self.root / "chunks.tsv"

    def stage_dir(self, stage: str) -> Path:
        """The folder whose settings tag a per-slide stage's outputs (its state lives there)."""
        return {"demo": self.demo_dir, "tile": self.tiles_dir(), "features": self.features_dir(),
                "select": self.selection_dir(), "caption": self.captions_dir()}[stage]

    def chunk_done(self, stage: str, chunk: str) -> Path:
        """A chunk job's declared output: its members' outcomes (JSON)."""
        return self.stage_dir(stage) / "chunks" / f"{chunk}.json"

    def chunk_retry(self, stage: str, chunk: str) -> Path:
        """Retry generation of a chunk (bumped when items failed; a rule param)."""
        return self.stage_dir(stage) / "chunks" / f"{chunk}.retry"

    def slide_state(self, stage: str, slide: str) -> Path:
        """Per-slide state record of a stage (status, error, fix, attempts, fingerprint)."""
        return self.stage_dir(stage) / "state" / f"{slide}.json"

    # -- bookkeeping -------------------------------------------------------------------
    def log(self, rule: str, name: str = "all") -> Path:
        return self.root / "logs" / rule / f"{name}.log"

    def benchmark(self, rule: str, name: str = "all") -> Path:
        return self.root / "benchmarks" / rule / f"{name}.tsv"
