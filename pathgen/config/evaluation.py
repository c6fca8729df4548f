"""Config section(s) for the evaluation stage."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from .base import Section
from .mil_presets import fill_task


# --- MIL (owned by pathgen/mil) -------------------------------------------------------
class MilTaskConfig(Section):
    """One slide-level classification task (a labels table + classes + splits). `preset`
    (camelyon16, bracs, tcga_nsclc, tcga_rcc: pathgen/data/mil_presets.yaml) fills classes,
    folds and val_fraction; build its labels/splits with `pathgen mil-labels --preset`."""

    preset: str | None = Field(None, description="Task preset whose classes/folds/val_fraction fill "
                                                 "the keys left out (pathgen/data/mil_presets.yaml).")
    labels: Path = Field(description="Labels table: CLAM dataset CSV `case_id,slide_id,label`, or "
                                     "(with `slide_table`) a STAMP clinical table `PATIENT,<target>`.")
    slide_table: Path | None = Field(None, description="STAMP slide table `PATIENT,FILENAME`; when "
                                                       "set, `labels` is read as a STAMP clinical table.")
    target: str = Field("label", description="Label column of the labels/clinical table.")
    classes: list[str] = Field(min_length=2, description="Class names in output order (p_0..p_C).")
    label_map: dict[str, str] = Field(default_factory=dict,
                                      description="Raw label -> class (e.g. BRACS N/PB/UDH -> benign).")
    splits: Path | None = Field(None, description="Given splits: a folder of CLAM `splits_<k>.csv`, "
                                                  "one such CSV, or a JSON file; null = generate.")
    folds: int = Field(5, ge=2, description="Generated patient-level stratified folds. Incremental: "
                                            "splits/fold_assignment.csv keeps each patient's fold "
                                            "and train/val role across runs, so added slides do not "
                                            "move earlier ones; changed folds/val_fraction/seed/"
                                            "classes (or deleting that file) draw them afresh.")
    val_fraction: float = Field(0.1, gt=0, lt=0.5,
                                description="Share of the training patients held out for validation.")
    features_dir: Path | None = Field(
        None, description="Existing feature folder (pathgen/TRIDENT `features_<enc>/`, CLAM folder "
                          "with `h5_files/` or `pt_files/`, STAMP folder); null = pathgen's own.")

    @model_validator(mode="before")
    @classmethod
    def _fill_from_preset(cls, data):
        return fill_task(data)


class AcmilConfig(Section):
    n_branches: int = Field(5, ge=1, description="Attention branches (ACMIL tokens).")
    mask_top_k: int = Field(10, ge=0, description="Top-attended instances eligible for masking.")
    mask_prob: float = Field(0.6, ge=0, le=1, description="Masking probability of each of them.")
    diversity_weight: float = Field(1.0, ge=0, description="Weight of the branch-diversity loss.")


class MilConfig(Section):
    enabled: bool = Field(True, description="Run the MIL benchmarks (rules mil_splits/mil/mil_table).")
    tasks: dict[str, MilTaskConfig] = Field(default_factory=dict, description="Task name -> task.")
    encoders: list[str] = Field(default_factory=list,
                                description="Encoders whose features are benchmarked, side by side "
                                            "in the table (empty = features.encoder): the features "
                                            "encoder, trained CLIPs and any other defined encoder "
                                            "(e.g. uni, virchow2: rule extract_encoder_features "
                                            "makes its features unless the task has a features_dir).")
    models: list[Literal["abmil", "acmil", "transmil"]] = Field(
        default_factory=lambda: ["abmil", "acmil", "transmil"], min_length=1)
    epochs: int = Field(50, ge=1, description="Training epochs per fold (paper: 50-100).")
    lr: float = Field(1e-4, gt=0, description="AdamW learning rate (cosine schedule).")
    weight_decay: float = Field(1e-5, ge=0)
    hidden_dim: int = Field(256, ge=8, description="Instance embedding width.")
    attn_dim: int = Field(128, ge=4, description="Gated-attention width (ABMIL/ACMIL).")
    dropout: float = Field(0.25, ge=0, lt=1)
    transmil_heads: int = Field(4, ge=1)
    acmil: AcmilConfig = Field(default_factory=AcmilConfig)
    seed: int = Field(0, description="Seeds splits, init, shuffling and masking.")
    device: str = Field("auto", description="'auto', 'cpu', 'cuda', ...")
    max_memory_mb: int = Field(8000, ge=0, description="Hold bags in memory when they fit in this "
                                                       "budget; else re-read HDF5 each epoch.")
    heatmap_slides: int = Field(2, ge=0, description="Test slides per fold drawn as attention heatmaps.")
    select_by: Literal["auroc", "f1_auc"] = Field(
        "auroc", description="Model selection on the validation set: 'auroc' (macro AUROC) or "
                             "'f1_auc' (the PathGen paper's: macro F1 + macro AUROC); ties -> lower "
                             "validation loss. Recorded in fold_<k>.json and metrics.json.")

    @model_validator(mode="after")
    def _heads_divide(self):
        if self.hidden_dim % self.transmil_heads:
            raise ValueError(f"evaluation.mil.hidden_dim ({self.hidden_dim}) must be divisible by "
                             f"evaluation.mil.transmil_heads ({self.transmil_heads})")
        return self
# --- end MIL ----------------------------------------------------------------------------


# --- zero-shot (owned by pathgen/zeroshot) --------------------------------------------
ZeroShotLayout = Literal["imagefolder", "csv", "pcam_h5", "sicap", "wsss4luad"]


class ZeroShotBenchmark(Section):
    """One patch-classification dataset on disk. `preset` fills layout/classes/prompts from
    pathgen/data/benchmarks.yaml (CRC100K, BACH, SICAPv2, WSSS4LUAD, PCAM, ...)."""

    root: Path = Field(description="Dataset folder (layout per `layout`).")
    preset: str | None = Field(None, description="Benchmark definition in pathgen/data/benchmarks.yaml.")
    layout: ZeroShotLayout | None = Field(
        None, description="imagefolder (<class>/<img>), csv (table of image,label), pcam_h5 "
                          "(PatchCamelyon x/y HDF5), sicap (SICAPv2 xlsx partition), wsss4luad "
                          "(labels in file names). null = the preset's.")
    classes: dict[str, str] | None = Field(
        None, description="Class code -> class text. null = preset's, else <root>/classes.json, "
                          "else the class folder names.")
    template: str | None = Field(None, description="Single-prompt template with '{}' for the class "
                                                   "text (else preset's, else <root>/template).")
    prompts: dict[str, str] | None = Field(None, description="Full prompt per class (overrides template).")
    prompt_file: str | None = Field(
        None, description="CONCH-style prompt JSON for the ensemble (a file, or a name in "
                          "pathgen/prompts/zeroshot/); null = preset's, else class texts x default "
                          "templates.")
    csv_file: str | None = Field(None, description="csv layout: table path relative to root.")
    image_key: str | None = Field(None, description="csv layout: image column.")
    label_key: str | None = Field(None, description="csv layout: label column.")
    image_dir: str | None = Field(None, description="csv/sicap layout: image folder relative to root.")
    split_key: str | None = Field(None, description="csv layout: split column to filter on.")
    split_value: str | None = Field(None, description="csv layout: keep rows with this split.")
    partition: str | None = Field(None, description="sicap layout: partition sheet relative to root "
                                                    "(default partition/Test/Test.xlsx).")
    label_map: dict[str, str] = Field(default_factory=dict, description="Raw label -> class code.")
    max_images: int | None = Field(None, ge=1, description="Seeded, stratified subsample (speed).")


class ZeroShotConfig(Section):
    enabled: bool = Field(True, description="Run the zero-shot benchmarks (rules zeroshot, "
                                            "zeroshot_table).")
    benchmarks: dict[str, ZeroShotBenchmark] = Field(
        default_factory=dict, description="Benchmark name -> dataset (only those you have on disk).")
    models: list[str] = Field(
        default_factory=list, description="Encoder names (see `encoders`) compared side by side; "
                                          "empty = training.register_as + features.encoder.")
    prompting: list[Literal["single", "ensemble"]] = Field(
        default_factory=lambda: ["single", "ensemble"], min_length=1,
        description="single = one prompt per class (reference protocol); ensemble = CONCH-style "
                    "synonyms x templates, mean then L2-normalised.")
    logit_scale: float = Field(100.0, gt=0, description="Logits = scale x cosine (reference: 100).")
    batch_size: int = Field(64, ge=1)
    num_workers: int = Field(0, ge=0)
    device: str = Field("auto", description="'auto', 'cpu', 'cuda', ...")
    bootstrap: int = Field(1000, ge=0, description="Bootstrap resamples for 95% CIs (0 = none).")
    seed: int = Field(0, description="Seeds bootstrap, subsampling and random-init baselines.")
    clip_benchmark_export: bool = Field(
        False, description="Also write each benchmark in CLIP_benchmark's wds layout, with open_clip "
                           "model folders and the `clip_benchmark eval` commands (rule "
                           "zeroshot_export -> <results>/eval/clip_benchmark/).")
# --- end zero-shot ----------------------------------------------------------------------


class EvaluationConfig(Section):
    mil: MilConfig = Field(default_factory=MilConfig, description="WSI MIL benchmarks.")
    zeroshot: ZeroShotConfig = Field(default_factory=ZeroShotConfig,
                                     description="Zero-shot patch classification benchmarks.")
