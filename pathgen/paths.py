"""Where every stage writes, in one place (the Snakefile and the CLI both use it).

Folder names carry the parameters that shape their content (tiling geometry, encoder,
captioning backend), TRIDENT-style, so two settings never overwrite each other and a
change of encoder re-runs features but not tiling.

Every literal file name of an output is a module constant here; code elsewhere joins these
constants (or calls a Layout method), never spells a name itself
(tests/test_paths_single_source.py checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .config import PathgenConfig

# -- file names (the one place each is spelled) ------------------------------------------
# dataset stage (<results>/dataset/)
OPEN_CLIP_CSV = "open_clip.csv"
DATASET_CARD_JSON = "dataset_card.json"
PATHGEN_JSON = "pathgen.json"         # PathGen release format, rows in the open_clip CSV's order
SHARDS_COUNT_JSON = "count.json"      # WebDataset shard folder: sample count
SHARDS_SIZES_JSON = "sizes.json"      # WebDataset shard folder: {shard basename: samples} (open_clip)
DATASET_CARD_MD = "dataset_card.md"
GALLERY_HTML = "gallery.html"
DATASET_IMAGES_DIR = "images"         # linked/copied patch images (paths in the CSV are relative to it)
DATASET_SHARDS_DIR = "shards"         # WebDataset shards + count.json / sizes.json
# Every file build_dataset writes, relative to the dataset folder (docs/architecture.md "Dataset").
DATASET_OUTPUTS = {"pathgen_json": PATHGEN_JSON, "open_clip_csv": OPEN_CLIP_CSV,
                   "shards_count": f"{DATASET_SHARDS_DIR}/{SHARDS_COUNT_JSON}",
                   "card_json": DATASET_CARD_JSON, "card_md": DATASET_CARD_MD, "gallery": GALLERY_HTML}
# captioning stage: side files beside each slide's final <slide>.jsonl (Layout.caption_files)
CAPTIONS_REJECTS_SUFFIX = ".rejects.jsonl"  # records the filters rejected (or that failed)
CAPTIONS_SUMMARY_SUFFIX = ".summary.json"   # per-slide counts, reasons, timings
CAPTIONS_PARTIAL_SUFFIX = ".partial.jsonl"  # append-only agent outputs: the resume cache
# training (<results>/training/)
FINAL_PT = "final.pt"
FINAL_JSON = "final.json"
LOSS_PNG = "loss.png"
LOSS_CSV = "loss.csv"
TRAIN_CSV = "train.csv"               # a training stage's merged pairs (several sources)
OPEN_CLIP_OUT_LOG = "out.log"         # open_clip_train's log in <logs>/<name>/
STAGE_JSON = "stage.json"             # per training stage: fingerprint + argv of its last start
WARM_START_DIR = "warm_start"
PREVIOUS_FINAL_PT = "previous_final.pt"
PREVIOUS_FINAL_JSON = "previous_final.json"
BASELINES_DIR = "baselines"           # training/baselines/<baseline>/: comparison CLIPs (same schedule)
# zero-shot (<results>/eval/zeroshot/ and the demo benchmark folder)
ZEROSHOT_TABLE_CSV = "table.csv"
ZEROSHOT_TABLE_MD = "table.md"
CLASSES_JSON = "classes.json"
TEMPLATE_FILE = "template"
PROMPTS_CONCH_JSON = "prompts_conch.json"
MANIFEST_CSV = "manifest.csv"
DEFAULT_TEMPLATES_JSON = "default_templates.json"  # packaged resource: pathgen/prompts/zeroshot/
# CLIP_benchmark's WebDataset layout (`clip_benchmark eval --dataset wds/<name>`), written by
# `pathgen zeroshot-export`: <root>/<split>/{0..N-1}.tar + nshards.txt, classnames and templates
CB_SPLIT = "test"
CB_NSHARDS_TXT = "nshards.txt"
CB_CLASSNAMES_TXT = "classnames.txt"
CB_TEMPLATES_TXT = "zeroshot_classification_templates.txt"
CB_ENSEMBLE_TEMPLATES_JSON = "ensemble_templates.json"  # --custom_template_file (class -> prompts)
CB_EXPORT_JSON = "pathgen_export.json"                   # what was exported + the command to run
# MIL (<results>/eval/mil/)
METRICS_JSON = "metrics.json"
METRICS_CSV = "metrics.csv"
SPLITS_SUMMARY_JSON = "splits_summary.json"
MIL_TABLE_CSV = "mil_table.csv"
MIL_TABLE_MD = "mil_table.md"
MIL_FOLD_ASSIGNMENT_CSV = "fold_assignment.csv"  # splits folder: each patient's role per fold
MIL_HEATMAPS_DIR = "heatmaps"                    # run folder: heatmaps/fold_<k>/<slide>.png
# instruction data (<results>/instruct/)
INSTRUCT_JSON = "pathgen_instruct.json"
INSTRUCT_PARQUET = "pathgen_instruct.parquet"
INSTRUCT_CARD_JSON = "instruct_card.json"
INSTRUCT_CARD_MD = "instruct_card.md"
INSTRUCT_REJECTS_JSONL = "rejects.jsonl"
INSTRUCT_IMAGES_DIR = "images"
# trained agents (<results>/agents/; pathgen/agents)
AGENTS_DATA_CARD_JSON = "agents_data_card.json"
AGENTS_LOSS_CSV = "loss.csv"
AGENTS_RUN_JSON = "run.json"                # settings fingerprint of a training run
AGENTS_TRAINER_STATE_PT = "trainer_state.pt"  # optimizer, scheduler, RNG and step of a checkpoint
AGENTS_MODEL_CARD_JSON = "pathgen_agent.json"  # beside the merged weights: base model, steps, losses
# peers' folder layouts written by `pathgen export` (CLAM and TRIDENT conventions)
CLAM_PATCHES_DIR = "patches"   # CLAM create_patches: patches/<slide>.h5 (coords)
CLAM_H5_DIR = "h5_files"       # CLAM extract_features: h5_files/<slide>.h5 (features + coords)
CLAM_PT_DIR = "pt_files"       # ... and pt_files/<slide>.pt (the tensor its MIL loader reads)
TRIDENT_PATCHES_DIR = "patches"  # TRIDENT Processor: <geometry>/patches/<slide>_patches.h5
# report (<results>/report/)
SUMMARY_HTML = "summary.html"
CAPTION_TOKENS_PNG = "caption_tokens.png"   # report work folder: caption-length histogram
REPORT_FIGURES_DIR = "figures"


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
        return demo_slide_files(self.demo_dir, slide)["slide"]

    @property
    def demo_zeroshot_dir(self) -> Path:
        """The patch benchmark cut from the holdout demo slides (pathgen/demo/benchmark.py)."""
        return self.demo_dir / "zeroshot"

    def demo_zeroshot_files(self, out_dir: Path | None = None) -> dict[str, Path]:
        """The benchmark's declared files, in ``out_dir`` (default: demo_zeroshot_dir)."""
        d = Path(out_dir) if out_dir is not None else self.demo_zeroshot_dir
        return {"classes": d / CLASSES_JSON, "template": d / TEMPLATE_FILE,
                "prompts": d / PROMPTS_CONCH_JSON, "manifest": d / MANIFEST_CSV}

    @staticmethod
    def demo_zeroshot_patch(code: str, slide: str, x: int, y: int) -> str:
        """A benchmark patch, relative to the benchmark folder (ImageFolder layout)."""
        return f"{code}/{slide}_{x}_{y}.png"

    @property
    def demo_labels(self) -> Path:
        """CSV case_id,slide_id,label,split (CLAM dataset format + a split column)."""
        return demo_labels_file(self.demo_dir)

    def demo_regions(self, slide: str) -> Path:
        """GeoJSON FeatureCollection of ground-truth regions (property `classification`)."""
        return demo_slide_files(self.demo_dir, slide)["regions"]

    def demo_holdout_ids(self, slide_ids: list[str]) -> list[str]:
        """Demo slides kept out of captioning and CLIP training (they feed the zero-shot set);
        stable as demo.n_slides grows (pathgen/demo/cohort.py)."""
        from .demo.cohort import demo_holdout_ids

        d = self.cfg.demo
        held = set(demo_holdout_ids(d.n_slides, d.holdout_fraction, d.seed))
        return [s for s in slide_ids if s in held]

    def holdout_ids(self, slide_ids: list[str]) -> list[str]:
        """Held-out slides for this run: the demo holdout when running the demo, else none."""
        return self.demo_holdout_ids(slide_ids) if self.cfg.uses_demo else []

    # -- tiling ------------------------------------------------------------------------
    def tiles_dir(self) -> Path:
        return self.root / "tiles" / self.tiling_tag

    def coords_dir(self) -> Path:
        return self.tiles_dir() / "coords"

    def coords(self, slide: str) -> Path:
        return self.coords_dir() / f"{slide}.h5"

    def tiling_qc(self, slide: str) -> Path:
        return self.tiles_dir() / "qc" / f"{slide}.jpg"

    def contours(self, slide: str) -> Path:
        return self.tiles_dir() / "contours" / f"{slide}.geojson"

    # -- peers' layouts (pathgen export) -----------------------------------------------
    @staticmethod
    def clam_export_files(out_dir: str | Path, slide: str) -> dict[str, Path]:
        """CLAM's files for one slide under ``out_dir`` (its --data_h5_dir and --feat_dir)."""
        d = Path(out_dir)
        return {"coords": d / CLAM_PATCHES_DIR / f"{slide}.h5", "h5": d / CLAM_H5_DIR / f"{slide}.h5",
                "pt": d / CLAM_PT_DIR / f"{slide}.pt"}

    @staticmethod
    def peer_feature_candidates(features_dir: str | Path, slide: str) -> tuple[Path, ...]:
        """Where a user's feature folder may hold a slide's bag, in the order MIL looks:
        pathgen/TRIDENT/STAMP ``<slide>.h5``, then CLAM ``h5_files/`` and ``pt_files/``."""
        clam = Layout.clam_export_files(features_dir, slide)
        return slide_features_file(features_dir, slide), clam["h5"], clam["pt"]

    @staticmethod
    def trident_geometry_dir(job_dir: str | Path, magnification: str, patch_px: int, overlap: int) -> Path:
        """TRIDENT's folder for one patching geometry: <mag>x_<px>px_<ov>px_overlap."""
        return Path(job_dir) / f"{magnification}x_{int(patch_px)}px_{int(overlap)}px_overlap"

    @staticmethod
    def trident_export_files(geometry_dir: str | Path, slide: str, encoder: str) -> dict[str, Path]:
        """TRIDENT's coords and patch-features files for one slide in a geometry folder."""
        d = Path(geometry_dir)
        return {"coords": d / TRIDENT_PATCHES_DIR / f"{slide}_patches.h5",
                "features": d / f"features_{encoder}" / f"{slide}.h5"}

    # -- features ----------------------------------------------------------------------
    def features_dir(self, encoder: str | None = None) -> Path:
        return self.tiles_dir() / f"features_{encoder or self.encoder}"

    def features(self, slide: str, encoder: str | None = None) -> Path:
        return slide_features_file(self.features_dir(encoder), slide)

    # -- selection / captions ----------------------------------------------------------
    def selection_dir(self) -> Path:
        return features_selection_dir(self.features_dir())

    def selection(self, slide: str) -> Path:
        return slide_selection_file(self.selection_dir(), slide)

    def selection_patches_root(self) -> Path:
        """Parent of every slide's selected-patch folder (what `--patches-root` options take)."""
        return selection_patches_dir(self.selection_dir())

    def selection_patches(self, slide: str) -> Path:
        return self.selection_patches_root() / slide

    @cached_property
    def _captions_tag(self) -> str:
        # The tag hashes the prompt templates (file reads): compute it once per run, not per job.
        return self.cfg.captioning.tag()

    def captions_dir(self) -> Path:
        return self.features_dir() / f"captions_{self._captions_tag}"

    def captions(self, slide: str) -> Path:
        return slide_captions_file(self.captions_dir(), slide)

    @staticmethod
    def caption_files(captions_jsonl: str | Path) -> dict[str, Path]:
        """One slide's captioning files, named from its final ``<slide>.jsonl``: captions,
        rejects, summary and the partial (resume) file, all in the same folder."""
        out = Path(captions_jsonl)
        stem = out.name.removesuffix(".jsonl")
        return {"captions": out, "rejects": out.with_name(stem + CAPTIONS_REJECTS_SUFFIX),
                "summary": out.with_name(stem + CAPTIONS_SUMMARY_SUFFIX),
                "partial": out.with_name(stem + CAPTIONS_PARTIAL_SUFFIX)}

    @staticmethod
    def report_findings_cache(cache_dir: str | Path, report_sha256: str) -> Path:
        """Cached findings of one pathology report (selection), keyed by a hash prefix."""
        return Path(cache_dir) / f"{report_sha256[:24]}.json"

    # -- aggregates ----------------------------------------------------------------------
    @property
    def dataset_dir(self) -> Path:
        return self.root / "dataset"

    @property
    def dataset_csv(self) -> Path:
        """The generated open_clip CSV (default training data)."""
        return self.dataset_dir / OPEN_CLIP_CSV

    @property
    def dataset_card(self) -> Path:
        return self.dataset_dir / DATASET_CARD_JSON

    @staticmethod
    def dataset_files(out_dir: str | Path) -> dict[str, Path]:
        """Every file build_dataset writes in ``out_dir`` (DATASET_OUTPUTS, joined)."""
        return {k: Path(out_dir) / v for k, v in DATASET_OUTPUTS.items()}

    @staticmethod
    def shards_count(shard_pattern: str | Path) -> Path:
        """count.json beside a WebDataset shard pattern (``.../shards/{00000..00009}.tar``)."""
        return Path(shard_pattern).parent / SHARDS_COUNT_JSON

    # -- training ------------------------------------------------------------------------
    @property
    def training_dir(self) -> Path:
        main = self.root / "training"
        return main / BASELINES_DIR / self.baseline if self.baseline else main

    def for_baseline(self, baseline: str | None) -> Layout:
        """The same layout with the training paths of ``baseline`` (None = the main CLIP)."""
        return Layout(self.cfg, baseline)

    @property
    def training_data_dir(self) -> Path:
        """A baseline's generated training pairs (open_clip CSV + its dataset card)."""
        return self.training_dir / "data"

    @property
    def training_default_csv(self) -> Path:
        """What a stage with empty `data` trains on: the caption dataset, or the baseline's pairs."""
        return self.training_data_dir / OPEN_CLIP_CSV if self.baseline else self.dataset_csv

    def training_data_files(self) -> dict[str, Path]:
        """The baseline dataset rule's outputs (the card holds separator and column names)."""
        return {"csv": self.training_data_dir / OPEN_CLIP_CSV,
                "card": self.training_data_dir / DATASET_CARD_JSON}

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
        return self.training_dir / FINAL_PT

    def training_outputs(self) -> dict[str, Path]:
        """The train_clip rule's outputs."""
        return training_files(self.training_dir, self.cfg.training.name)

    @property
    def warm_start_dir(self) -> Path:
        return warm_start_files(self.training_dir, self.cfg.training.name)["checkpoint"].parent

    def warm_start_files(self) -> dict[str, Path]:
        """The previous run's final weights kept for `training.warm_start`. Not a rule output on
        purpose: Snakemake deletes a rule's outputs (final.pt) before rerunning it."""
        return warm_start_files(self.training_dir, self.cfg.training.name)

    @staticmethod
    def stage_record(stage_dir: Path) -> Path:
        """stage.json of a training stage folder (fingerprint and argv of its last start)."""
        return Path(stage_dir) / STAGE_JSON

    # -- evaluation ------------------------------------------------------------------------
    @property
    def eval_dir(self) -> Path:
        return self.root / "eval"

    @property
    def zeroshot_dir(self) -> Path:
        return self.eval_dir / "zeroshot"

    def zeroshot_table(self) -> dict[str, Path]:
        """The combined zero-shot table (rule zeroshot_table)."""
        return {"csv": self.zeroshot_dir / ZEROSHOT_TABLE_CSV, "md": self.zeroshot_dir / ZEROSHOT_TABLE_MD}

    def zeroshot_run_dir(self, benchmark: str, model: str) -> Path:
        return self.zeroshot_dir / benchmark / model

    @staticmethod
    def zeroshot_run_files(run_dir: Path, prompting: str) -> dict[str, Path]:
        """One prompting mode's files in a benchmark x model folder (zeroshot/run.py)."""
        d = Path(run_dir)
        return {"results": d / f"results_{prompting}.json",
                "predictions": d / f"predictions_{prompting}.csv",
                "confusion_csv": d / f"confusion_{prompting}.csv",
                "confusion_png": d / f"confusion_{prompting}.png"}

    def zeroshot_result(self, benchmark: str, model: str, prompting: str) -> Path:
        return self.zeroshot_run_files(self.zeroshot_run_dir(benchmark, model), prompting)["results"]

    def zeroshot_results_found(self) -> list[Path]:
        """Every results_<prompting>.json on disk under zeroshot_dir/<benchmark>/<model>/."""
        pattern = self.zeroshot_run_files(Path("*", "*"), "*")["results"]
        return sorted(self.zeroshot_dir.glob(pattern.as_posix()))

    @staticmethod
    def table_files(stem: str | Path) -> dict[str, Path]:
        """<stem>.csv and <stem>.md of a results table written where a user asked (--out)."""
        return {"csv": Path(f"{stem}.csv"), "md": Path(f"{stem}.md")}

    @property
    def clip_benchmark_dir(self) -> Path:
        """`pathgen zeroshot-export` output: CLIP_benchmark datasets and open_clip model folders."""
        return self.eval_dir / "clip_benchmark"

    def clip_benchmark_dataset(self, benchmark: str) -> Path:
        """The --dataset_root of `clip_benchmark eval --dataset wds/<benchmark>`."""
        return clip_benchmark_paths(self.clip_benchmark_dir, benchmark)["dataset"]

    def clip_benchmark_model(self, model: str) -> Path:
        """An open_clip `local-dir:` model folder (open_clip_config.json + weights)."""
        return clip_benchmark_paths(self.clip_benchmark_dir, "", model)["model"]

    def clip_benchmark_result(self, benchmark: str, model: str, prompting: str) -> Path:
        """Where the printed `clip_benchmark eval` command writes its --output."""
        return clip_benchmark_paths(self.clip_benchmark_dir, benchmark, model, prompting)["result"]

    @staticmethod
    def clip_benchmark_files(dataset_root: Path) -> dict[str, Path]:
        """The files CLIP_benchmark's wds loader reads (shards: split_dir / f"{i}.tar")."""
        d = Path(dataset_root)
        return {"split_dir": d / CB_SPLIT, "nshards": d / CB_SPLIT / CB_NSHARDS_TXT,
                "classnames": d / CB_CLASSNAMES_TXT, "templates": d / CB_TEMPLATES_TXT,
                "ensemble": d / CB_ENSEMBLE_TEMPLATES_JSON, "export": d / CB_EXPORT_JSON}

    @staticmethod
    def benchmark_classes(root: Path) -> Path:
        """classes.json of a patch benchmark folder (written by the demo benchmark)."""
        return Path(root) / CLASSES_JSON

    @staticmethod
    def benchmark_prompts(root: Path) -> Path:
        """CONCH-style prompt file a patch benchmark folder may carry (the demo benchmark's)."""
        return Path(root) / PROMPTS_CONCH_JSON

    @property
    def mil_dir(self) -> Path:
        return self.eval_dir / "mil"

    def mil_splits_dir(self, task: str) -> Path:
        """``splits_<k>.csv`` + splits_summary.json of a task."""
        return self.mil_dir / task / "splits"

    def mil_splits_summary(self, task: str) -> Path:
        return self.mil_splits_companions(self.mil_splits_dir(task))["summary"]

    def mil_run_dir(self, task: str, encoder: str, model: str) -> Path:
        return self.mil_dir / task / encoder / model

    def mil_metrics(self, task: str, encoder: str, model: str) -> dict[str, Path]:
        """The mil rule's outputs (mean +- sd over folds)."""
        return self.mil_run_files(self.mil_run_dir(task, encoder, model))

    @staticmethod
    def mil_run_files(run_dir: str | Path) -> dict[str, Path]:
        """A MIL run folder's summary files (mean +- sd over folds)."""
        d = Path(run_dir)
        return {"metrics": d / METRICS_JSON, "table": d / METRICS_CSV}

    @staticmethod
    def mil_fold_files(run_dir: str | Path, k: int) -> dict[str, Path]:
        """One fold's files in a MIL run folder; CLAM names the selected weights s_<k>_checkpoint.pt."""
        d = Path(run_dir)
        return {"json": d / f"fold_{k}.json", "csv": d / f"fold_{k}.csv",
                "checkpoint": d / f"s_{k}_checkpoint.pt", "heatmaps": d / MIL_HEATMAPS_DIR / f"fold_{k}"}

    @staticmethod
    def mil_heatmap(heatmaps_dir: str | Path, slide: str) -> Path:
        return Path(heatmaps_dir) / f"{slide}.png"

    @staticmethod
    def mil_split_file(splits_dir: str | Path, k: int) -> Path:
        """CLAM's fold file splits_<k>.csv (columns train,val,test)."""
        return Path(splits_dir) / f"splits_{k}.csv"

    @staticmethod
    def mil_split_files(splits_dir: str | Path) -> dict[int, Path]:
        """The splits_<k>.csv files present in a folder, by k (ascending)."""
        pattern = Layout.mil_split_file("", "*").name  # splits_*.csv
        head, tail = pattern.split("*")
        found = {}
        for f in Path(splits_dir).glob(pattern):
            k = f.name[len(head):len(f.name) - len(tail)]
            if k.isdigit():
                found[int(k)] = f
        return dict(sorted(found.items()))

    @staticmethod
    def mil_splits_companions(splits_dir: str | Path) -> dict[str, Path]:
        """The summary beside the fold files, and the fold assignment of generated folds."""
        d = Path(splits_dir)
        return {"summary": d / SPLITS_SUMMARY_JSON, "assignment": d / MIL_FOLD_ASSIGNMENT_CSV}

    def mil_table(self) -> dict[str, Path]:
        """The combined MIL table (rule mil_table)."""
        return {"csv": self.mil_dir / MIL_TABLE_CSV, "md": self.mil_dir / MIL_TABLE_MD}

    # -- instruction data ------------------------------------------------------------------
    @property
    def instruct_dir(self) -> Path:
        return self.root / "instruct"

    def instruct_outputs(self) -> dict[str, Path]:
        """The build_instruct rule's outputs."""
        files = self.instruct_files(self.instruct_dir)
        return {k: files[k] for k in ("json", "parquet", "card")}

    @staticmethod
    def instruct_files(out_dir: Path) -> dict[str, Path]:
        """Every file build_instruct writes in ``out_dir`` (the rule's outputs and companions)."""
        d = Path(out_dir)
        return {"json": d / INSTRUCT_JSON, "parquet": d / INSTRUCT_PARQUET, "card": d / INSTRUCT_CARD_JSON,
                "card_md": d / INSTRUCT_CARD_MD, "rejects": d / INSTRUCT_REJECTS_JSONL,
                "images": d / INSTRUCT_IMAGES_DIR}

    @staticmethod
    def instruct_drafts(out_dir: Path, tag: str) -> Path:
        """Resume aid of build_instruct, named by the settings that shape drafts."""
        return Path(out_dir) / f"drafts.{tag}.partial.jsonl"

    @staticmethod
    def instruct_image(wsi_id: str, x: int, y: int) -> str:
        """An instruct record's image, relative to the images folder (PathGen-Instruct release)."""
        return f"{wsi_id}/{x}_{y}.jpg"

    # -- trained agents (pathgen/agents) -----------------------------------------------------
    @property
    def agents_dir(self) -> Path:
        return self.root / "agents"

    @staticmethod
    def agents_sft_files(out_dir: Path, agent: str) -> dict[str, Path]:
        """One agent's train/val LLaVA JSON in a build-data folder, + its card (``agent`` may
        be the ``{agent}`` wildcard)."""
        d = Path(out_dir)
        return {"train": d / f"{agent}_train.json", "val": d / f"{agent}_val.json",
                "card": d / AGENTS_DATA_CARD_JSON}

    @staticmethod
    def agents_data_files(out_dir: Path) -> dict[str, Path]:
        """SFT files of build-data in ``out_dir``: ``<agent>_<split>`` -> LLaVA JSON, + card."""
        files = {f"{a}_{s}": p for a in ("describe", "revise")
                 for s, p in Layout.agents_sft_files(out_dir, a).items() if s != "card"}
        return {**files, "card": Path(out_dir) / AGENTS_DATA_CARD_JSON}

    @property
    def agents_data_dir(self) -> Path:
        return self.agents_dir / "data"

    def agents_run_dir(self, agent: str) -> Path:
        """One agent's training folder: checkpoints/, loss.csv, run.json, model/."""
        return self.agents_dir / agent

    @staticmethod
    def agents_run_files(run_dir: Path) -> dict[str, Path]:
        d = Path(run_dir)
        return {"checkpoints": d / "checkpoints", "loss_csv": d / AGENTS_LOSS_CSV,
                "run": d / AGENTS_RUN_JSON, "model": d / "model"}

    @staticmethod
    def agents_checkpoint(run_dir: Path, step: int) -> Path:
        return Path(run_dir) / "checkpoints" / f"step_{step:07d}"

    @staticmethod
    def agents_trainer_state(checkpoint: Path) -> Path:
        return Path(checkpoint) / AGENTS_TRAINER_STATE_PT

    @staticmethod
    def agents_model_files(model_dir: Path) -> dict[str, Path]:
        """The exported (merged) model folder's declared files."""
        d = Path(model_dir)
        # config.json is Hugging Face's name for any model folder, not a pathgen output name
        return {"config": d / "config.json", "card": d / AGENTS_MODEL_CARD_JSON}

    # -- report ----------------------------------------------------------------------------
    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    # -- files beside a user's inputs / inside open_clip's run folders ----------------------
    @staticmethod
    def dataset_card_beside(csv_path: Path) -> Path:
        """The dataset_card.json pathgen's dataset stage writes beside its open_clip CSV."""
        return Path(csv_path).parent / DATASET_CARD_JSON

    @staticmethod
    def shard_count_files(shards_dir: Path) -> dict[str, Path]:
        """Sample counts beside WebDataset shards: pathgen's count.json, open_clip's sizes.json."""
        d = Path(shards_dir)
        return {"count": d / SHARDS_COUNT_JSON, "sizes": d / SHARDS_SIZES_JSON}

    @staticmethod
    def training_merged_csv(stage_data_dir: Path) -> Path:
        return Path(stage_data_dir) / TRAIN_CSV

    @staticmethod
    def open_clip_checkpoint(checkpoints_dir: Path, epoch: int) -> Path:
        """open_clip_train's checkpoint naming: <logs>/<name>/checkpoints/epoch_<N>.pt."""
        return Path(checkpoints_dir) / f"epoch_{epoch}.pt"

    @staticmethod
    def open_clip_out_log(run_dir: Path) -> Path:
        return Path(run_dir) / OPEN_CLIP_OUT_LOG

    @property
    def report_html(self) -> Path:
        return self.report_dir / SUMMARY_HTML

    @property
    def report_figures_dir(self) -> Path:
        return self.report_dir / REPORT_FIGURES_DIR

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

    def features_chunk_done(self, chunk: str, encoder: str) -> Path:
        """Chunk outcome of another encoder's features (a trained CLIP's, for MIL): the same
        place as chunk_done("features", chunk) of a run whose features.encoder is ``encoder``."""
        return self.features_dir(encoder) / "chunks" / f"{chunk}.json"

    def chunk_retry(self, stage: str, chunk: str) -> Path:
        """Retry generation of a chunk (bumped when items failed; a rule param)."""
        return self.stage_dir(stage) / "chunks" / f"{chunk}.retry"

    def slide_state_dir(self, stage: str) -> Path:
        return self.stage_dir(stage) / "state"

    def slide_state(self, stage: str, slide: str) -> Path:
        """Per-slide state record of a stage (status, error, fix, attempts, fingerprint)."""
        return self.slide_state_dir(stage) / f"{slide}.json"

    # -- bookkeeping -------------------------------------------------------------------
    @staticmethod
    def snakemake_profile_config(profile_dir: str | Path) -> Path:
        """A Snakemake profile folder's settings file (Snakemake's name, not a pathgen output)."""
        return Path(profile_dir) / "config.yaml"

    def log(self, rule: str, name: str = "all") -> Path:
        return self.root / "logs" / rule / f"{name}.log"

    def benchmark(self, rule: str, name: str = "all") -> Path:
        return self.root / "benchmarks" / rule / f"{name}.tsv"


def slide_features_file(features_dir: str | Path, slide: str) -> Path:
    """<features dir>/<slide>.h5, the name Layout.features uses (for plain-path CLIs)."""
    return Path(features_dir) / f"{slide}.h5"


def features_selection_dir(features_dir: str | Path) -> Path:
    """<features dir>/selection, the folder Layout.selection_dir uses."""
    return Path(features_dir) / "selection"


def selection_patches_dir(selection_dir: str | Path) -> Path:
    """<selection dir>/patches, the patches root Layout.selection_patches_root uses."""
    return Path(selection_dir) / "patches"


def slide_selection_file(selection_dir: str | Path, slide: str) -> Path:
    """<selection dir>/<slide>.csv, the name Layout.selection uses (jobs given the folder)."""
    return Path(selection_dir) / f"{slide}.csv"


def slide_captions_file(captions_dir: str | Path, slide: str) -> Path:
    """<captions dir>/<slide>.jsonl, the name Layout.captions uses (jobs given the folder)."""
    return Path(captions_dir) / f"{slide}.jsonl"


def demo_slide_files(demo_dir: str | Path, slide: str) -> dict[str, Path]:
    """A demo slide's SVS and ground-truth GeoJSON under demo.out_dir (jobs given the section)."""
    return {"slide": Path(demo_dir) / "slides" / f"{slide}.svs",
            "regions": Path(demo_dir) / "regions" / f"{slide}.geojson"}


def demo_labels_file(demo_dir: str | Path) -> Path:
    """<demo.out_dir>/slide_labels.csv, the name Layout.demo_labels uses."""
    return Path(demo_dir) / "slide_labels.csv"


def features_partial_file(features_h5: str | Path) -> Path:
    """<features HDF5>.partial: the resumable file a features HDF5 is written into, beside it
    (os.replace-d onto it when complete)."""
    out = Path(features_h5)
    return out.with_name(out.name + ".partial")


def training_files(training_dir: str | Path, name: str) -> dict[str, Path]:
    """A training run's outputs (Layout.training_outputs) in ``training_dir`` (training/ or
    training/baselines/<baseline>/) for run ``name`` (training.name): jobs given the folder."""
    run_dir = Path(training_dir) / name
    return {"final": Path(training_dir) / FINAL_PT, "meta": Path(training_dir) / FINAL_JSON,
            "loss_png": run_dir / LOSS_PNG, "loss_csv": run_dir / LOSS_CSV}


def warm_start_files(training_dir: str | Path, name: str) -> dict[str, Path]:
    """Layout.warm_start_files of run ``name`` in ``training_dir``."""
    warm = Path(training_dir) / name / WARM_START_DIR
    return {"checkpoint": warm / PREVIOUS_FINAL_PT, "meta": warm / PREVIOUS_FINAL_JSON}


def clip_benchmark_paths(cb_dir: str | Path, benchmark: str, model: str = "",
                         prompting: str = "") -> dict[str, Path]:
    """Under the clip_benchmark folder (Layout.clip_benchmark_dir): a benchmark's wds dataset
    root, a model's open_clip `local-dir:` folder and one `clip_benchmark eval` --output."""
    d = Path(cb_dir)
    return {"dataset": d / "wds" / benchmark, "model": d / "models" / model,
            "result": d / "results" / benchmark / model / f"results_{prompting}.json"}
