"""Config section for CLIP training (a wrapper around open_clip's own trainer).

Every key maps onto an ``open_clip_train.main`` flag; ``stages`` runs the trainer several
times in order, each stage starting from the previous stage's final checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from .base import Section

# open_clip_train's --precision choices (params.py of open_clip_torch 3.x).
Precision = Literal["amp", "amp_bf16", "amp_bfloat16", "bf16", "fp16", "pure_bf16", "pure_fp16",
                    "fp32"]


class TrainStage(Section):
    """One run of the trainer over one dataset (or several combined)."""

    name: str = Field(description="Stage name; its folder is training/<run name>/<stage>/.",
                      pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    data: list[str] = Field(
        default_factory=list,
        description="CSV files (image path + caption columns) or WebDataset shard specs "
                    "('shards/shard-{000000..000009}.tar'). Several CSVs are merged; several "
                    "WebDataset specs are joined with '::'. Empty = the generated dataset "
                    "(<results_dir>/dataset/open_clip.csv).")
    dataset_type: Literal["auto", "csv", "webdataset"] = Field(
        "auto", description="'auto' = by file suffix (.csv/.tsv -> csv, .tar -> webdataset).")
    csv_separator: str | None = Field(
        None, description="CSV separator. null = `csv_separator` of the dataset_card.json beside "
                          "the CSV, else detected from the header (open_clip's own default is TAB).")
    csv_img_key: str = Field("filepath", description="CSV column with image paths.")
    csv_caption_key: str = Field("title", description="CSV column with captions.")
    num_samples: int | None = Field(
        None, ge=1, description="Samples per epoch. Required for WebDataset unless the shard folder "
                                "has count.json or sizes.json.")
    epochs: int | None = Field(None, ge=1, description="Overrides training.epochs for this stage.")
    lr: float | None = Field(None, gt=0, description="Overrides training.lr for this stage.")
    batch_size: int | None = Field(None, ge=1, description="Overrides training.batch_size.")
    warmup: int | None = Field(None, ge=0, description="Overrides training.warmup.")


class SlideTextConfig(Section):
    """The `slide_text` baseline: every caption-dataset patch paired with its slide's label
    sentence instead of its own caption (the "train on the report text" comparison)."""

    labels: Path | None = Field(
        None, description="CLAM dataset CSV with slide_id + the label column (case_id, split "
                          "ignored). null = the demo's slide_labels.csv when running the demo.")
    label_column: str = Field("label", description="Column holding each slide's label.")
    template: str = Field("An H&E image from a slide diagnosed as {}.",
                          description="Sentence per slide; '{}' takes the label's text.")
    label_texts: dict[str, str] = Field(
        default_factory=dict, description="Label -> the words put into the template (default: "
                                          "the label itself).")

    @field_validator("template")
    @classmethod
    def _has_slot(cls, v):
        if "{}" not in v:
            raise ValueError("training.slide_text.template needs a '{}' for the label text")
        return v

    def sentence(self, label: str) -> str:
        return self.template.format(self.label_texts.get(label, label))


BASELINES = ("slide_text",)


class TrainingConfig(Section):
    enabled: bool = Field(True, description="Train a CLIP (rule train_clip).")
    name: str = Field("pathgen-clip", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                      description="Experiment name (open_clip --name); folder training/<name>/.")
    arch: str = Field("ViT-B-16",
                      description="open_clip architecture (ViT-B-16 = PathGen-CLIP's, ViT-L-14-336, "
                                  "or a JSON in pathgen/model_configs such as the demo's "
                                  "pathgen-tiny-vit).")
    pretrained: str | None = Field(
        "openai", description="Initial weights of the first stage: an open_clip tag ('openai'), a local "
                          "checkpoint, 'hf-hub:org/name[/file.pt]' (downloaded, then passed as a "
                          "file), or null = random init (train from scratch).")
    warm_start: bool = Field(
        False, description="When the training data (or settings) changed and an earlier run's "
                           "final weights exist (kept in training/<name>/warm_start/"
                           "previous_final.pt), start the first stage from them instead of "
                           "`pretrained`, with the configured schedule; final.json records "
                           "`warm_start_from`. false = train as configured (paper reproduction: "
                           "from scratch).")
    model_config_file: Path | None = Field(
        None, description="Extra open_clip model-config JSON to register (architecture name = "
                          "file stem), for architectures not shipped with open_clip or pathgen.")
    force_quick_gelu: bool = Field(True, description="QuickGELU (needed for OpenAI-initialised "
                                                     "models, as PathGen-CLIP).")
    image_size: int | None = Field(None, gt=0, description="Override the architecture's input size.")
    epochs: int = Field(10, ge=1, description="Epochs per stage (stages may override).")
    batch_size: int = Field(64, ge=1, description="Batch size per GPU.")
    lr: float = Field(1e-5, gt=0, description="Peak learning rate (cosine schedule); 1e-5 "
                                              "fine-tunes pretrained CLIP weights (from scratch "
                                              "use ~5e-4).")
    warmup: int = Field(1000, ge=0, description="Warm-up steps.")
    wd: float = Field(0.2, ge=0, description="AdamW weight decay.")
    precision: Precision = Field("amp", description="open_clip --precision; 'amp' falls back to "
                                                    "fp32 on CPU.")
    workers: int = Field(4, ge=0, description="Data-loader workers per GPU.")
    lock_image: bool = Field(False, description="Freeze the image tower (LiT).")
    lock_image_unlocked_groups: int = Field(0, ge=0, description="Last image layer groups left "
                                                                  "trainable when locked.")
    lock_text: bool = Field(False, description="Freeze the text tower.")
    lock_text_unlocked_layers: int = Field(0, ge=0)
    grad_checkpointing: bool = False
    seed: int = 0
    log_every_n_steps: int = Field(10, ge=1, description="Loss logging interval (feeds the curve).")
    save_frequency: int = Field(1, ge=1, description="Save epoch_<N>.pt every N epochs.")
    gpus: int = Field(1, ge=0, description="GPUs per node; >1 launches torchrun --nproc_per_node N "
                                          "(one node), or under SLURM one srun task per GPU. "
                                          "0 = CPU.")
    nodes: int = Field(1, ge=1, description="Nodes of a SLURM training job: the rule asks for "
                                           "`nodes` nodes with `gpus` GPUs each and srun starts "
                                           "nodes x gpus processes (open_clip reads SLURM_PROCID "
                                           "/ SLURM_NTASKS / SLURM_LOCALID). batch_size is per "
                                           "process, so the global batch is nodes x gpus x "
                                           "batch_size. Must be 1 outside SLURM.")
    device: str = Field("auto", description="'auto' (cuda when available), 'cpu', 'cuda'.")
    extra_args: list[str] = Field(default_factory=list,
                                  description="Passed verbatim to open_clip_train.main.")
    stages: list[TrainStage] = Field(
        default_factory=lambda: [TrainStage(name="main")],
        description="Ordered training stages (e.g. seed pairs, then generated + seed pairs); "
                    "each starts from the previous stage's last checkpoint.")
    register_as: str = Field(
        "pathgen-clip-trained", description="Encoder name of the trained CLIP (training/final.pt): "
                                             "zero-shot and MIL name it without an `encoders` entry "
                                             "(the demo: pathgen-demo-clip).")
    baselines: list[Literal["slide_text"]] = Field(
        default_factory=list,
        description="Comparison CLIPs trained with the same architecture, schedule and seed on "
                    "the same patches: slide_text = each patch captioned with its slide's label "
                    "sentence (training.slide_text). Weights: training/baselines/<name>/final.pt; "
                    "declare them under `encoders` as `<register_as>-<name>` to evaluate them.")
    slide_text: SlideTextConfig = Field(default_factory=SlideTextConfig)

    def baseline_encoder(self, baseline: str) -> str:
        """Encoder name of a baseline's weights (in final.json; zero-shot/MIL use it)."""
        return f"{self.register_as}-{baseline}"

    @field_validator("stages")
    @classmethod
    def _unique_stages(cls, stages):
        if not stages:
            raise ValueError("training.stages needs at least one stage")
        names = [s.name for s in stages]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"training.stages: duplicate stage names {sorted(dup)}")
        return stages

    @model_validator(mode="after")
    def _extra_args_are_flags(self):
        if self.extra_args and not self.extra_args[0].startswith("--"):
            raise ValueError("training.extra_args must start with an open_clip flag such as "
                             "'--grad-clip-norm'")
        return self
