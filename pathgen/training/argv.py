"""Build open_clip_train.main's argv from the training config (pure; no I/O).

Flags follow open_clip_train/params.py (open_clip_torch 3.x). Layout per stage:
``<training_dir>/<name>/<stage>/logs/<name>/checkpoints/epoch_<N>.pt`` (open_clip's own
``--logs``/``--name`` layout), so ``--resume latest`` finds a crashed stage's checkpoints.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..config import ConfigError
from ..config.training import TrainingConfig, TrainStage
from .data import StageData
from .files import open_clip_checkpoint, open_clip_out_log

ENTRY_MODULE = "pathgen.training.entry"  # torchrun target: registers pathgen archs, then open_clip


@dataclass(frozen=True)
class StagePaths:
    stage_dir: Path
    logs: Path          # --logs
    run_dir: Path       # <logs>/<name>
    checkpoints: Path
    epochs: int

    @property
    def final_checkpoint(self) -> Path:
        return open_clip_checkpoint(self.checkpoints, self.epochs)

    @property
    def out_log(self) -> Path:
        return open_clip_out_log(self.run_dir)


def stage_paths(training_dir: Path, cfg: TrainingConfig, stage: TrainStage) -> StagePaths:
    stage_dir = Path(training_dir) / cfg.name / stage.name
    logs = stage_dir / "logs"
    run_dir = logs / cfg.name
    return StagePaths(stage_dir, logs, run_dir, run_dir / "checkpoints",
                      stage.epochs or cfg.epochs)


def resolve_device(cfg: TrainingConfig, cuda_available: bool) -> str:
    if cfg.gpus == 0:
        return "cpu"
    if cfg.device == "auto":
        return "cuda" if cuda_available else "cpu"
    return cfg.device


def effective_precision(cfg: TrainingConfig, device: str) -> str:
    # fp16 autocast on CPU is slow and poorly supported; fp32 there is the honest choice.
    if device == "cpu" and cfg.precision in ("amp", "fp16", "pure_fp16"):
        return "fp32"
    return cfg.precision


def build_argv(cfg: TrainingConfig, stage: TrainStage, data: StageData, paths: StagePaths,
               pretrained: str | None, device: str) -> list[str]:
    """Arguments for one stage. ``pretrained``: tag/file of the starting weights (None = init)."""
    batch = stage.batch_size or cfg.batch_size
    if data.dataset_type == "csv" and data.num_samples:
        # open_clip drops the last partial batch: a batch larger than the data means 0 steps.
        batch = min(batch, data.num_samples)
    argv = [
        "--model", cfg.arch,
        "--train-data", data.train_data,
        "--dataset-type", data.dataset_type,
        "--logs", str(paths.logs),
        "--name", cfg.name,
        "--epochs", str(paths.epochs),
        "--batch-size", str(batch),
        "--lr", repr(stage.lr or cfg.lr),
        "--wd", repr(cfg.wd),
        "--warmup", str(stage.warmup if stage.warmup is not None else cfg.warmup),
        "--precision", effective_precision(cfg, device),
        "--workers", str(cfg.workers),
        "--device", device,
        "--seed", str(cfg.seed),
        "--save-frequency", str(cfg.save_frequency),
        "--log-every-n-steps", str(cfg.log_every_n_steps),
        "--resume", "latest",  # no-op on a fresh stage; continues a crashed one
    ]
    if data.dataset_type == "csv":
        # Always explicit: open_clip's default separator is TAB, the most common user error.
        argv += ["--csv-separator", data.csv_separator or "\t",
                 "--csv-img-key", data.csv_img_key,
                 "--csv-caption-key", data.csv_caption_key]
    elif data.num_samples:
        argv += ["--train-num-samples", str(data.num_samples)]
    if pretrained:
        argv += ["--pretrained", pretrained]
    if cfg.force_quick_gelu:
        argv.append("--force-quick-gelu")
    if cfg.image_size:
        argv += ["--force-image-size", str(cfg.image_size)]
    if cfg.lock_image:
        argv += ["--lock-image", "--lock-image-unlocked-groups", str(cfg.lock_image_unlocked_groups)]
    if cfg.lock_text:
        argv += ["--lock-text", "--lock-text-unlocked-layers", str(cfg.lock_text_unlocked_layers)]
    if cfg.grad_checkpointing:
        argv.append("--grad-checkpointing")
    return argv + list(cfg.extra_args)


def processes(cfg: TrainingConfig) -> int:
    """Trainer processes of a run: nodes x gpus per node (a CPU run counts one per node
    unless gpus > 1)."""
    return cfg.nodes * max(cfg.gpus, 1)


def under_slurm(env: Mapping[str, str] | None = None) -> bool:
    """This process runs inside a SLURM allocation (a batch job, salloc or srun)."""
    env = os.environ if env is None else env
    return bool(env.get("SLURM_JOB_ID"))


def check_launch(cfg: TrainingConfig, env: Mapping[str, str] | None = None) -> None:
    """Refuse a multi-node run outside SLURM (locally there is one node: nodes must be 1)."""
    if cfg.nodes > 1 and not under_slurm(env):
        raise ConfigError(
            f"training.nodes is {cfg.nodes} but this run is not inside a SLURM job: several "
            "nodes need SLURM (snakemake --profile slurm). Set training.nodes: 1 for a local run "
            "(training.gpus GPUs on this machine).")


def srun_command(cfg: TrainingConfig, device: str, threads: int | None = None) -> list[str]:
    """srun prefix starting one open_clip process per GPU on every node of the job (open_clip's
    documented SLURM launch: it reads SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID, and MASTER_ADDR/
    MASTER_PORT, which pathgen.training.entry sets from the step's node list)."""
    per_node = max(cfg.gpus, 1)
    cmd = ["srun", f"--nodes={cfg.nodes}", f"--ntasks={cfg.nodes * per_node}",
           f"--ntasks-per-node={per_node}", "--kill-on-bad-exit=1", "--export=ALL"]
    if threads:
        cmd.append(f"--cpus-per-task={threads}")
    if device.startswith("cuda") and cfg.gpus:
        # every task sees its node's GPUs; open_clip takes cuda:<SLURM_LOCALID>
        cmd.append(f"--gres=gpu:{cfg.gpus}")
    return cmd + [sys.executable, "-m", ENTRY_MODULE]


def launcher(cfg: TrainingConfig, device: str, env: Mapping[str, str] | None = None,
             threads: int | None = None) -> list[str]:
    """Command prefix: [] = in-process open_clip_train.main.main(argv); torchrun (several GPUs,
    one node); srun (inside a SLURM job with nodes x gpus > 1 processes)."""
    check_launch(cfg, env)
    if processes(cfg) > 1 and under_slurm(env):
        return srun_command(cfg, device, threads)
    if cfg.gpus > 1 and device.startswith("cuda"):
        return [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc_per_node={cfg.gpus}", "-m", ENTRY_MODULE]
    return []
