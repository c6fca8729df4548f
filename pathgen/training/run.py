"""Run the configured training stages with open_clip's trainer and export the final model.

Each stage is one call of ``open_clip_train.main.main(argv)`` (in-process for 1 GPU/CPU),
``torchrun --nproc_per_node N`` (several GPUs on one machine) or, inside a SLURM job with
``training.nodes`` x ``training.gpus`` > 1, ``srun`` starting one task per GPU on every node.
A finished stage (its last ``epoch_<N>.pt`` exists) is skipped on rerun; an unfinished one
resumes with ``--resume latest`` (rank 0 finds the checkpoint, open_clip broadcasts it).

``training.warm_start``: each finished run keeps its final weights in
``<training_dir>/<name>/warm_start/previous_final.pt`` (a hard link to final.pt, or a copy);
when the first stage must run again (its fingerprint changed), it starts from those weights
instead of ``training.pretrained``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shlex
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..atomic import atomic_path, write_json
from ..config import ConfigError
from ..config.training import BASELINES, TrainingConfig, TrainStage
from ..dataset.files import shards_count
from .argv import StagePaths, build_argv, launcher, resolve_device, srun_command, stage_paths
from .curves import parse_out_log, plot_loss
from .data import StageData, resolve_stage_data
from .files import stage_record, training_files, warm_start_files
from .models import check_arch, register_model_configs, resolve_pretrained

log = logging.getLogger(__name__)


@dataclass
class StageRun:
    name: str
    argv: list[str]
    command: list[str]
    checkpoint: str
    pretrained: str | None
    num_samples: int | None
    skipped: bool = False
    warm_start_from: str | None = None


@dataclass
class TrainResult:
    final: Path | None
    stages: list[StageRun] = field(default_factory=list)
    loss_first_epoch: float | None = None
    loss_last_epoch: float | None = None
    warm_start_from: str | None = None


def _run_in_process(argv: list[str]) -> None:
    from open_clip_train.main import main as open_clip_main

    # open_clip's setup_logging adds a console + out.log handler to the root logger and sets
    # every logger to INFO on each call. Park our console handlers (it prints its own), keep
    # file handlers (Snakemake's log), and restore everything after, so a later stage's lines
    # do not land in this stage's out.log.
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    levels = {name: lg.level for name, lg in logging.root.manager.loggerDict.items()
              if isinstance(lg, logging.Logger)}
    root.handlers[:] = [h for h in saved if isinstance(h, logging.FileHandler)]
    try:
        rc = open_clip_main(argv)
    finally:
        for h in root.handlers:
            if h not in saved:
                h.close()
        root.handlers[:] = saved
        root.setLevel(level)
        for name, lg in logging.root.manager.loggerDict.items():
            if isinstance(lg, logging.Logger):
                lg.setLevel(levels.get(name, logging.NOTSET))
    if rc not in (None, 0):
        raise RuntimeError(f"open_clip_train.main returned {rc} (see the messages above)")


def _run_launched(cmd: list[str], extra_configs: list[str]) -> None:
    """Run a stage through torchrun (several GPUs, one node) or srun (nodes x gpus SLURM tasks)."""
    env = dict(os.environ, PATHGEN_MODEL_CONFIGS=os.pathsep.join(extra_configs))
    log.info("launching: %s", shlex.join(cmd))
    proc = subprocess.run(cmd, env=env)
    if proc.returncode:
        name = "srun" if cmd[0] == "srun" else "torchrun"
        raise RuntimeError(f"{name} exited with {proc.returncode}; see the stage's out.log")


@dataclass(frozen=True)
class _Setup:
    """What every step of a training run shares: settings, paths, device and launcher."""
    tc: TrainingConfig
    training_dir: Path      # training/ or training/baselines/<baseline>/
    default_csv: Path | None  # what a stage with empty `data` trains on
    baseline: str | None
    device: str
    prefix: list[str]       # torchrun (several GPUs) or srun (SLURM tasks) command, or []
    extra: list[str]        # extra model-config files (training.model_config_file)

    @property
    def encoder_name(self) -> str:
        return self.tc.baseline_encoder(self.baseline) if self.baseline else self.tc.register_as

    @property
    def outputs(self) -> dict[str, Path]:
        return training_files(self.training_dir, self.tc.name)

    @property
    def warm_files(self) -> dict[str, Path]:
        return warm_start_files(self.training_dir, self.tc.name)


@dataclass
class _StagePlan:
    """One stage, planned: its paths, data, command and state."""
    paths: StagePaths
    data: StageData
    run: StageRun
    fingerprint: str        # identity of the configured work (recorded in stage.json)
    chain: str              # identity handed to the next stage (warm start included)
    warm: str | None        # warm-start checkpoint, if any
    warm_of: str | None     # fingerprint of the run that produced it
    restart: bool           # old checkpoints must be discarded first


def train(tc: TrainingConfig, training_dir: Path, default_csv: Path | None = None, *,
          dry_run: bool = False, threads: int | None = None,
          baseline: str | None = None) -> TrainResult:
    """Run (or, with ``dry_run``, only plan) every stage of ``tc`` in ``training_dir``, writing
    its outputs there (paths.training_files); ``threads`` caps torch CPU threads.
    ``default_csv``: the pairs a stage with empty `data` trains on (the caption dataset's
    open_clip CSV, or a baseline's pairs). ``baseline`` (e.g. slide_text): name the weights
    as that baseline's encoder (training.register_as-<baseline>) in final.json."""
    setup = _set_up(tc, Path(training_dir), default_csv, threads, baseline, dry_run)
    result = TrainResult(final=None)
    previous, chain = None, ""
    for i, stage in enumerate(setup.tc.stages):
        plan = _plan_stage(setup, i, stage, previous, chain, dry_run)
        result.stages.append(plan.run)
        if plan.warm:
            result.warm_start_from = plan.warm
        previous, chain = plan.paths.final_checkpoint, plan.chain
        if not dry_run:
            _run_stage(setup, stage, plan)
    if not dry_run:
        _finish(setup, result, previous, chain)
    return result


def _set_up(tc: TrainingConfig, training_dir: Path, default_csv: Path | None,
            threads: int | None, baseline: str | None, dry_run: bool = False) -> _Setup:
    """Register pathgen's model configs, check the architecture, pick device and launcher."""
    if baseline is not None and baseline not in BASELINES:
        raise ConfigError(f"unknown training baseline '{baseline}'; known: {', '.join(BASELINES)}")
    no_data = [s.name for s in tc.stages if not s.data]
    if no_data and default_csv is None:
        raise ConfigError(f"training stages {no_data} have no `data` and no default dataset was "
                          "given: set training.stages[].data or build the caption dataset")
    extra = [str(tc.model_config_file)] if tc.model_config_file else []
    register_model_configs(extra)
    check_arch(tc.arch)
    device = resolve_device(tc, torch.cuda.is_available())
    if dry_run and tc.nodes > 1:  # a plan shows the SLURM launch, wherever it is made
        prefix = srun_command(tc, device, threads)
    else:
        prefix = launcher(tc, device, threads=threads)
    if threads and device == "cpu":
        torch.set_num_threads(threads)
    return _Setup(tc, training_dir, Path(default_csv) if default_csv else None, baseline, device,
                  prefix, extra)


def _plan_stage(setup: _Setup, i: int, stage: TrainStage, previous: Path | None, chain: str,
                dry_run: bool) -> _StagePlan:
    """Data, start weights, argv and fingerprint of stage ``i``; whether it is done, must
    restart, or warm-starts. ``chain``: the previous stage's identity."""
    tc = setup.tc
    paths = stage_paths(setup.training_dir, tc, stage)
    if i == 0:
        pretrained = tc.pretrained if dry_run else resolve_pretrained(tc.pretrained, tc.arch)
    else:
        pretrained = str(previous)
    data = resolve_stage_data(stage, setup.default_csv, paths.stage_dir, write=not dry_run)
    argv = build_argv(tc, stage, data, paths, pretrained, setup.device)
    # The fingerprint is that of the configured work; a warm start changes only the
    # starting weights (recorded beside it, and chained into later stages' identity).
    fingerprint = stage_fingerprint(argv, stage.data or [str(setup.default_csv)], chain)
    finished, restart, warm, warm_of = _stage_state(setup, i, paths, fingerprint)
    if warm:
        pretrained = warm
        argv = build_argv(tc, stage, data, paths, pretrained, setup.device)
    run = StageRun(stage.name, argv, setup.prefix + argv, str(paths.final_checkpoint), pretrained,
                   data.num_samples, skipped=finished, warm_start_from=warm)
    next_chain = fingerprint
    if warm:
        next_chain = hashlib.sha256(f"{fingerprint}|warm:{warm_of}".encode()).hexdigest()[:16]
    return _StagePlan(paths, data, run, fingerprint, next_chain, warm, warm_of, restart)


def _stage_state(setup: _Setup, i: int, paths: StagePaths,
                 fingerprint: str) -> tuple[bool, bool, str | None, str | None]:
    """(finished, restart, warm-start checkpoint, its run's fingerprint) of a stage, from its
    stage.json and checkpoints."""
    tc = setup.tc
    record = _stage_record(paths)
    # Data, settings or an earlier stage changed: old checkpoints must not be resumed.
    restart = paths.logs.exists() and record.get("fingerprint") not in (None, fingerprint)
    started = record.get("fingerprint") == fingerprint and paths.logs.exists()
    finished = started and paths.final_checkpoint.exists()
    recorded_warm = record.get("warm_start_from") if started else None
    warm = warm_of = None
    if recorded_warm:
        if i == 0 and tc.warm_start and (finished or Path(recorded_warm).is_file()):
            # finished or interrupted: the stage keeps the start it was given
            warm, warm_of = recorded_warm, record.get("warm_start_of")
        else:  # warm_start switched off (or its source gone mid-stage): not as configured
            started = finished = False
            restart = True
    if i == 0 and tc.warm_start and not started:
        warm, warm_of = _warm_source(setup.warm_files, tc)
    return finished, restart, warm, warm_of


def _run_stage(setup: _Setup, stage: TrainStage, plan: _StagePlan) -> None:
    """Run a planned stage unless finished (discarding stale checkpoints first)."""
    paths, run = plan.paths, plan.run
    if run.skipped:
        log.info("stage %s already finished (%s); skipping", stage.name, paths.final_checkpoint)
        return
    if plan.restart:
        log.warning("stage %s: inputs changed since its checkpoints were written; "
                    "restarting it from scratch", stage.name)
        shutil.rmtree(paths.logs)
    if plan.warm:
        log.info("stage %s: warm start from %s (the previous run's final weights) instead "
                 "of %s", stage.name, plan.warm, setup.tc.pretrained or "random init")
    log.info("stage %s: %s pairs, start weights %s", stage.name, plan.data.num_samples,
             run.pretrained or "random init")
    write_json(stage_record(paths.stage_dir), {"fingerprint": plan.fingerprint,
                                                      "argv": run.argv, "warm_start_from": plan.warm,
                                                      "warm_start_of": plan.warm_of})
    if setup.prefix:
        _run_launched(run.command, setup.extra)
    else:
        _run_in_process(run.argv)
    if not paths.final_checkpoint.exists():
        raise RuntimeError(f"stage {stage.name} ended without {paths.final_checkpoint}; see "
                           f"{paths.out_log}")


def _finish(setup: _Setup, result: TrainResult, last_checkpoint: Path, chain: str) -> None:
    """Export final.pt, keep it for a warm start, write the loss curve and final.json."""
    outs = setup.outputs
    export_final(last_checkpoint, outs["final"])
    result.final = outs["final"]
    keep_for_warm_start(outs["final"], setup.warm_files, setup.tc, chain)
    _write_loss_curve(setup, result, outs)
    _write_meta(setup, result, last_checkpoint, outs)


def _write_loss_curve(setup: _Setup, result: TrainResult, outs: dict[str, Path]) -> None:
    """loss.png + loss.csv from every stage's out.log; first/last epoch mean loss on ``result``."""
    tc = setup.tc
    points = []
    for stage in tc.stages:
        out_log = stage_paths(setup.training_dir, tc, stage).out_log
        if out_log.exists():
            points += parse_out_log(out_log, stage.name)
    if not points:
        return
    plot_loss(points, outs["loss_png"], title=f"{setup.encoder_name} ({tc.arch})")
    with atomic_path(outs["loss_csv"]) as tmp:
        tmp.write_text("stage,epoch,progress,loss,lr\n" + "".join(
            f"{p.stage},{p.epoch},{p.progress:.4f},{p.loss:.6f},{p.lr if p.lr is not None else ''}\n"
            for p in points))
    first_epoch = [p.loss for p in points if p.stage == points[0].stage and p.epoch == points[0].epoch]
    last_epoch = [p.loss for p in points if p.stage == points[-1].stage and p.epoch == points[-1].epoch]
    result.loss_first_epoch = sum(first_epoch) / len(first_epoch)
    result.loss_last_epoch = sum(last_epoch) / len(last_epoch)


def _write_meta(setup: _Setup, result: TrainResult, last_checkpoint: Path,
                outs: dict[str, Path]) -> None:
    """final.json: the exported model, how it was trained, and its encoder entry."""
    tc = setup.tc
    write_json(outs["meta"], {
        "checkpoint": str(outs["final"]), "source": str(last_checkpoint), "arch": tc.arch,
        "force_quick_gelu": tc.force_quick_gelu, "image_size": tc.image_size,
        "initial_weights": tc.pretrained, "name": tc.name, "baseline": setup.baseline,
        "warm_start": tc.warm_start, "warm_start_from": result.warm_start_from,
        "encoder": {setup.encoder_name: {"kind": "open_clip", "arch": tc.arch,
                                     "pretrained": str(outs["final"]),
                                     "force_quick_gelu": tc.force_quick_gelu,
                                     "image_size": tc.image_size}},
        "loss_first_epoch": result.loss_first_epoch, "loss_last_epoch": result.loss_last_epoch,
        "stages": [asdict(s) for s in result.stages],
    })


def stage_fingerprint(argv: list[str], sources: list[str], previous: str) -> str:
    """Identity of a stage's work: settings (minus device/workers), source contents (CSV or
    count.json bytes) and the previous stage's identity. A change restarts the stage."""
    h = hashlib.sha256(previous.encode())
    skip = {"--device", "--workers"}
    h.update(json.dumps([a for i, a in enumerate(argv)
                         if a not in skip and (i == 0 or argv[i - 1] not in skip)]).encode())
    for src in sources:
        path = Path(src)
        if ".tar" in src:
            path = shards_count(src)
        if path.is_file():
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    h.update(block)
        else:
            h.update(src.encode())
    return h.hexdigest()[:16]


def _stage_record(paths) -> dict:
    """stage.json of the stage's last start ({} when absent or unreadable)."""
    try:
        record = json.loads(stage_record(paths.stage_dir).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return record if isinstance(record, dict) else {}


def _warm_identity(tc) -> dict:
    return {"arch": tc.arch, "image_size": tc.image_size, "force_quick_gelu": tc.force_quick_gelu}


def _warm_source(files: dict[str, Path], tc) -> tuple[str | None, str | None]:
    """(checkpoint, its run's fingerprint) to warm-start from, or (None, None)."""
    ckpt = files["checkpoint"]
    if not ckpt.is_file():
        log.info("training.warm_start: no previous final checkpoint (%s); nothing to continue "
                 "from, training as configured (start weights %s)", ckpt,
                 tc.pretrained or "random init")
        return None, None
    try:
        meta = json.loads(files["meta"].read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        meta = {}
    if not isinstance(meta, dict):
        meta = {}
    identity = {k: meta.get(k) for k in _warm_identity(tc)}
    if identity != _warm_identity(tc):
        log.warning("training.warm_start: %s was trained as %s, not %s; training as configured",
                    ckpt, identity, _warm_identity(tc))
        return None, None
    return str(ckpt), meta.get("fingerprint")


def keep_for_warm_start(final: Path, files: dict[str, Path], tc, fingerprint: str) -> None:
    """Keep the final weights outside the rule's outputs (hard link, else copy)."""
    target = files["checkpoint"]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(final, tmp)
    except OSError:
        shutil.copyfile(final, tmp)
    os.replace(tmp, target)
    write_json(files["meta"], {"fingerprint": fingerprint, "source": str(final), "name": tc.name,
                               **_warm_identity(tc)})


def export_final(checkpoint: Path, target: Path) -> None:
    """Write a bare state_dict (no optimizer, no 'module.' prefix): loads with plain
    ``open_clip.create_model_and_transforms(arch, pretrained=target)``."""
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    sd = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else ckpt
    sd = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in sd.items()}
    with atomic_path(target, suffix=".pt") as tmp:
        torch.save(sd, tmp)
    log.info("final checkpoint %s (from %s)", target, checkpoint)


def describe(result: TrainResult) -> str:
    lines = []
    for s in result.stages:
        state = "done, skipped" if s.skipped else "to run"
        lines.append(f"# stage {s.name} ({state}) -> {s.checkpoint}")
        lines.append(" ".join(_quote(a) for a in (s.command if s.command != s.argv else
                                                  ["python", "-m", "open_clip_train.main"] + s.argv)))
    return "\n".join(lines)


def _quote(arg: str) -> str:
    if arg == "\t":
        return "$'\\t'"  # bash ANSI-C quoting: copy-pasteable TAB
    return shlex.quote(arg)
