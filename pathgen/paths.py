"""Where every stage writes: the resolver from the config to the run's folders (the Snakefile,
the rules' parse-time helpers and the CLI front doors use it).

Folder names carry the parameters that shape their content (tiling geometry, encoder,
captioning backend), TRIDENT-style, so two settings never overwrite each other and a
change of encoder re-runs features but not tiling.

File names live beside the area that owns them, in ``pathgen/<area>/files.py`` (no config
import, so library code imports those, never this module). ``Layout`` turns the config into
folders and delegates the names inside them to those modules; only the run's bookkeeping
(chunk outcomes, per-slide state, logs, benchmarks) is named here. Code elsewhere joins
these names (or calls a function of them), never spells a name itself
(tests/test_paths_single_source.py checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .agents import files as agents_names
from .captioning import files as captioning_names
from .config import PathgenConfig
from .config.agents import AGENTS_RESULTS_DIR
from .dataset import files as dataset_names
from .demo import files as demo_names
from .demo.cohort import demo_holdout_ids
from .features import files as features_names
from .instruct import files as instruct_names
from .mil import files as mil_names
from .report import files as report_names
from .selection import files as selection_names
from .tiling import files as tiling_names
from .training import files as training_names
from .zeroshot import files as zeroshot_names

# captioning's names, re-exported for the captioning modules that still import them from here
# (pathgen/captioning is being edited elsewhere; they should import pathgen.captioning.files)
from .captioning.files import (CAPTIONS_PARTIAL_SUFFIX, CAPTIONS_REJECTS_SUFFIX,  # noqa: F401, E402
                               CAPTIONS_SUMMARY_SUFFIX, caption_files, slide_captions_file)

# -- the run's bookkeeping (chunks, per-slide state, logs) --------------------------------
CHUNK_REGISTRY_TSV = "chunks.tsv"     # <results>/chunks.tsv: slide_id<TAB>chunk
CHUNKS_DIR = "chunks"                 # <stage folder>/chunks/<chunk>.json (+ .retry)
STATE_DIR = "state"                   # <stage folder>/state/<slide>.json
LOGS_DIR = "logs"
BENCHMARKS_DIR = "benchmarks"
# <results>/run_config.yaml: the effective config of the latest run writing there (merged,
# validated, each value's source); <workdir>/.pathgen/last_run.yaml: where the latest run
# started in that working directory recorded it (pathgen/run_record.py).
RUN_CONFIG_YAML = "run_config.yaml"
LAST_RUN_POINTER = Path(".pathgen") / "last_run.yaml"
UNLOCK_CONFIG = Path(".pathgen") / "unlock_config.yaml"  # `pathgen recover`: the run's --config


@dataclass(frozen=True)
class Layout:
    cfg: PathgenConfig
    # A training baseline (training.baselines, e.g. "slide_text"): the training paths below
    # then name its own folder, training/baselines/<baseline>/, and its own training data.
    baseline: str | None = None

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
        return demo_names.demo_slide_files(self.demo_dir, slide)["slide"]

    @property
    def demo_zeroshot_dir(self) -> Path:
        """The patch benchmark cut from the holdout demo slides (pathgen/demo/benchmark.py)."""
        return demo_names.demo_zeroshot_dir(self.demo_dir)

    def demo_zeroshot_files(self, out_dir: Path | None = None) -> dict[str, Path]:
        """The benchmark's declared files, in ``out_dir`` (default: demo_zeroshot_dir)."""
        return zeroshot_names.benchmark_files(out_dir if out_dir is not None else self.demo_zeroshot_dir)

    @property
    def demo_labels(self) -> Path:
        """CSV case_id,slide_id,label,split (CLAM dataset format + a split column)."""
        return demo_names.demo_labels_file(self.demo_dir)

    def demo_regions(self, slide: str) -> Path:
        """GeoJSON FeatureCollection of ground-truth regions (property `classification`)."""
        return demo_names.demo_slide_files(self.demo_dir, slide)["regions"]

    def demo_holdout_ids(self, slide_ids: list[str]) -> list[str]:
        """Demo slides kept out of captioning and CLIP training (they feed the zero-shot set);
        stable as demo.n_slides grows (pathgen/demo/cohort.py)."""
        d = self.cfg.demo
        held = set(demo_holdout_ids(d.n_slides, d.holdout_fraction, d.seed))
        return [s for s in slide_ids if s in held]

    def holdout_ids(self, slide_ids: list[str]) -> list[str]:
        """Held-out slides for this run: the demo holdout when running the demo, else none."""
        return self.demo_holdout_ids(slide_ids) if self.cfg.uses_demo else []

    # -- tiling ------------------------------------------------------------------------
    def tiles_dir(self) -> Path:
        return tiling_names.tiles_dir(self.root, self.tiling_tag)

    def coords_dir(self) -> Path:
        return tiling_names.coords_dir(self.tiles_dir())

    def coords(self, slide: str) -> Path:
        return tiling_names.coords_file(self.tiles_dir(), slide)

    def tiling_qc(self, slide: str) -> Path:
        return tiling_names.qc_file(self.tiles_dir(), slide)

    def contours(self, slide: str) -> Path:
        return tiling_names.contours_file(self.tiles_dir(), slide)

    # -- features ----------------------------------------------------------------------
    def features_dir(self, encoder: str | None = None) -> Path:
        return features_names.features_dir(self.tiles_dir(), encoder or self.encoder)

    def features(self, slide: str, encoder: str | None = None) -> Path:
        return features_names.slide_features_file(self.features_dir(encoder), slide)

    # -- selection / captions ----------------------------------------------------------
    def selection_dir(self) -> Path:
        return selection_names.features_selection_dir(self.features_dir())

    def selection(self, slide: str) -> Path:
        return selection_names.slide_selection_file(self.selection_dir(), slide)

    def selection_patches_root(self) -> Path:
        """Parent of every slide's selected-patch folder (what `--patches-root` options take)."""
        return selection_names.selection_patches_dir(self.selection_dir())

    def selection_patches(self, slide: str) -> Path:
        return selection_names.slide_patches_dir(self.selection_patches_root(), slide)

    @cached_property
    def _captions_tag(self) -> str:
        # The tag hashes the prompt templates (file reads): compute it once per run, not per job.
        return self.cfg.captioning.tag()

    def captions_dir(self) -> Path:
        return captioning_names.captions_dir(self.features_dir(), self._captions_tag)

    def captions(self, slide: str) -> Path:
        return captioning_names.slide_captions_file(self.captions_dir(), slide)

    # One slide's captioning files, named from its final <slide>.jsonl (the chunk runner's name).
    caption_files = staticmethod(caption_files)

    # -- aggregates ----------------------------------------------------------------------
    @property
    def dataset_dir(self) -> Path:
        return self.root / dataset_names.DATASET_DIR

    @property
    def dataset_csv(self) -> Path:
        """The generated open_clip CSV (default training data)."""
        return dataset_names.dataset_files(self.dataset_dir)["open_clip_csv"]

    @property
    def dataset_card(self) -> Path:
        return dataset_names.dataset_files(self.dataset_dir)["card_json"]

    # -- training ------------------------------------------------------------------------
    @property
    def training_dir(self) -> Path:
        return training_names.training_dir(self.root, self.baseline)

    def for_baseline(self, baseline: str | None) -> Layout:
        """The same layout with the training paths of ``baseline`` (None = the main CLIP)."""
        return Layout(self.cfg, baseline)

    @property
    def training_data_dir(self) -> Path:
        """A baseline's generated training pairs (open_clip CSV + its dataset card)."""
        return self.training_dir / training_names.TRAINING_DATA_DIR

    @property
    def training_default_csv(self) -> Path:
        """What a stage with empty `data` trains on: the caption dataset, or the baseline's pairs."""
        return self.training_data_files()["csv"] if self.baseline else self.dataset_csv

    def training_data_files(self) -> dict[str, Path]:
        """The baseline dataset rule's outputs (the card holds separator and column names)."""
        return dataset_names.csv_and_card(self.training_data_dir)

    @property
    def training_run_dir(self) -> Path:
        """Per-run folder ``training/<training.name>/`` (stages, loss curve, warm start)."""
        return self.training_dir / self.cfg.training.name

    def training_stage_dir(self, stage: str) -> Path:
        """One stage's folder (open_clip's --logs is its ``logs/``; see training/argv.py)."""
        return self.training_run_dir / stage

    @property
    def training_final(self) -> Path:
        """The exported final weights (a bare state_dict)."""
        return self.training_outputs()["final"]

    def training_outputs(self) -> dict[str, Path]:
        """The train_clip rule's outputs."""
        return training_names.training_files(self.training_dir, self.cfg.training.name)

    @property
    def warm_start_dir(self) -> Path:
        return self.warm_start_files()["checkpoint"].parent

    def warm_start_files(self) -> dict[str, Path]:
        """The previous run's final weights kept for `training.warm_start`. Not a rule output on
        purpose: Snakemake deletes a rule's outputs (final.pt) before rerunning it."""
        return training_names.warm_start_files(self.training_dir, self.cfg.training.name)

    # -- evaluation ------------------------------------------------------------------------
    @property
    def eval_dir(self) -> Path:
        return self.root / zeroshot_names.EVAL_DIR

    @property
    def zeroshot_dir(self) -> Path:
        return self.eval_dir / zeroshot_names.ZEROSHOT_DIR

    def zeroshot_table(self) -> dict[str, Path]:
        """The combined zero-shot table (rule zeroshot_table)."""
        return zeroshot_names.zeroshot_table_files(self.zeroshot_dir)

    def zeroshot_run_dir(self, benchmark: str, model: str) -> Path:
        return self.zeroshot_dir / benchmark / model

    def zeroshot_result(self, benchmark: str, model: str, prompting: str) -> Path:
        return zeroshot_names.zeroshot_run_files(self.zeroshot_run_dir(benchmark, model), prompting)["results"]

    def zeroshot_results_found(self) -> list[Path]:
        """Every results_<prompting>.json on disk under zeroshot_dir/<benchmark>/<model>/."""
        pattern = zeroshot_names.zeroshot_run_files(Path("*", "*"), "*")["results"]
        return sorted(self.zeroshot_dir.glob(pattern.as_posix()))

    @property
    def clip_benchmark_dir(self) -> Path:
        """`pathgen zeroshot-export` output: CLIP_benchmark datasets and open_clip model folders."""
        return self.eval_dir / zeroshot_names.CLIP_BENCHMARK_DIR

    def clip_benchmark_dataset(self, benchmark: str) -> Path:
        """The --dataset_root of `clip_benchmark eval --dataset wds/<benchmark>`."""
        return zeroshot_names.clip_benchmark_paths(self.clip_benchmark_dir, benchmark)["dataset"]

    def clip_benchmark_model(self, model: str) -> Path:
        """An open_clip `local-dir:` model folder (open_clip_config.json + weights)."""
        return zeroshot_names.clip_benchmark_paths(self.clip_benchmark_dir, "", model)["model"]

    def clip_benchmark_result(self, benchmark: str, model: str, prompting: str) -> Path:
        """Where the printed `clip_benchmark eval` command writes its --output."""
        return zeroshot_names.clip_benchmark_paths(self.clip_benchmark_dir, benchmark, model, prompting)["result"]

    # The files CLIP_benchmark's wds loader reads (the rules' name).
    clip_benchmark_files = staticmethod(zeroshot_names.clip_benchmark_files)

    @property
    def mil_dir(self) -> Path:
        return self.eval_dir / mil_names.MIL_DIR

    def mil_splits_dir(self, task: str) -> Path:
        """``splits_<k>.csv`` + splits_summary.json of a task."""
        return self.mil_dir / task / mil_names.SPLITS_DIR

    def mil_splits_summary(self, task: str) -> Path:
        return mil_names.mil_splits_companions(self.mil_splits_dir(task))["summary"]

    def mil_run_dir(self, task: str, encoder: str, model: str) -> Path:
        return self.mil_dir / task / encoder / model

    def mil_metrics(self, task: str, encoder: str, model: str) -> dict[str, Path]:
        """The mil rule's outputs (mean +- sd over folds)."""
        return mil_names.mil_run_files(self.mil_run_dir(task, encoder, model))

    def mil_table(self) -> dict[str, Path]:
        """The combined MIL table (rule mil_table)."""
        return mil_names.mil_table_files(self.mil_dir)

    # -- instruction data ------------------------------------------------------------------
    @property
    def instruct_dir(self) -> Path:
        return self.root / instruct_names.INSTRUCT_DIR

    def instruct_outputs(self) -> dict[str, Path]:
        """The build_instruct rule's outputs."""
        files = instruct_names.instruct_files(self.instruct_dir)
        return {k: files[k] for k in ("json", "parquet", "card")}

    # -- trained agents (pathgen/agents) -----------------------------------------------------
    @property
    def agents_dir(self) -> Path:
        return self.root / AGENTS_RESULTS_DIR

    @property
    def agents_data_dir(self) -> Path:
        return self.agents_dir / agents_names.AGENTS_DATA_DIR

    def agents_run_dir(self, agent: str) -> Path:
        """One agent's training folder: checkpoints/, loss.csv, run.json, model/."""
        return self.agents_dir / agent

    # The agents' file names under the names the rules use (pathgen/agents/files.py).
    agents_sft_files = staticmethod(agents_names.agents_sft_files)
    agents_data_files = staticmethod(agents_names.agents_data_files)
    agents_run_files = staticmethod(agents_names.agents_run_files)
    agents_model_files = staticmethod(agents_names.agents_model_files)

    # -- report ----------------------------------------------------------------------------
    @property
    def report_dir(self) -> Path:
        return self.root / report_names.REPORT_DIR

    @property
    def report_html(self) -> Path:
        return self.report_dir / report_names.SUMMARY_HTML

    @property
    def report_figures_dir(self) -> Path:
        return self.report_dir / report_names.REPORT_FIGURES_DIR

    # -- the run's record and slide chunks and per-slide state (pathgen/runner) -------------
    @property
    def run_config(self) -> Path:
        """The effective config of the latest run writing into this results folder."""
        return self.root / RUN_CONFIG_YAML

    @staticmethod
    def last_run_pointer(workdir: str | Path = ".") -> Path:
        """Names the run config of the latest run started in ``workdir``."""
        return Path(workdir) / LAST_RUN_POINTER

    @staticmethod
    def find_run_config(workdir: str | Path = ".") -> Path | None:
        """The latest run's record: the one ``workdir``'s pointer names, else the one in the
        results folder ``workdir``/config.yaml names; None when no run recorded one."""
        from .config import CONFIG_YAML, ConfigError, file_layer, resolve_config
        from .run_record import read_pointer

        found = read_pointer(Layout.last_run_pointer(workdir))
        config_yaml = Path(workdir) / CONFIG_YAML
        if found is not None or not config_yaml.is_file():
            return found
        try:
            root = Layout(resolve_config([file_layer(config_yaml, CONFIG_YAML)]).config).run_config
        except ConfigError:
            return None
        root = root if root.is_absolute() else Path(workdir) / root
        return root if root.is_file() else None

    @staticmethod
    def unlock_config(workdir: str | Path = ".") -> Path:
        """The recorded run's --config values as a file for `snakemake --unlock`."""
        return Path(workdir) / UNLOCK_CONFIG

    @property
    def chunk_registry(self) -> Path:
        """TSV slide_id, chunk: stable chunk membership, appended as slides are added."""
        return self.root / CHUNK_REGISTRY_TSV

    def stage_dir(self, stage: str) -> Path:
        """The folder whose settings tag a per-slide stage's outputs (its state lives there)."""
        return {"demo": self.demo_dir, "tile": self.tiles_dir(), "features": self.features_dir(),
                "select": self.selection_dir(), "caption": self.captions_dir()}[stage]

    def chunk_done(self, stage: str, chunk: str) -> Path:
        """A chunk job's declared output: its members' outcomes (JSON)."""
        return self.stage_dir(stage) / CHUNKS_DIR / f"{chunk}.json"

    def features_chunk_done(self, chunk: str, encoder: str) -> Path:
        """Chunk outcome of another encoder's features (a trained CLIP's, for MIL): the same
        place as chunk_done("features", chunk) of a run whose features.encoder is ``encoder``."""
        return self.features_dir(encoder) / CHUNKS_DIR / f"{chunk}.json"

    def chunk_retry(self, stage: str, chunk: str) -> Path:
        """Retry generation of a chunk (bumped when items failed; a rule param)."""
        return self.stage_dir(stage) / CHUNKS_DIR / f"{chunk}.retry"

    def slide_state_dir(self, stage: str) -> Path:
        return self.stage_dir(stage) / STATE_DIR

    def slide_state(self, stage: str, slide: str) -> Path:
        """Per-slide state record of a stage (status, error, fix, attempts, fingerprint)."""
        return self.slide_state_dir(stage) / f"{slide}.json"

    # -- bookkeeping -------------------------------------------------------------------
    @staticmethod
    def snakemake_profile_config(profile_dir: str | Path) -> Path:
        """A Snakemake profile folder's settings file (Snakemake's name, not a pathgen output)."""
        return Path(profile_dir) / "config.yaml"

    def log(self, rule: str, name: str = "all") -> Path:
        return self.root / LOGS_DIR / rule / f"{name}.log"

    def benchmark(self, rule: str, name: str = "all") -> Path:
        return self.root / BENCHMARKS_DIR / rule / f"{name}.tsv"
