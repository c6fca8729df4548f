"""`pathgen doctor`: check the environment and the config before a long run (TRIDENT-style).

When SLURM is reachable (``scontrol`` answers), doctor also checks what ``--profile slurm``
would submit, before anything is queued:

* every rule that becomes a SLURM job, at its **largest** request (the chunk rules at a full
  chunk: min(cluster.max_job_minutes, chunk size x per-slide runtime), one slide's memory,
  CPUs and GPU; the aggregates min(cluster.max_job_minutes, runtime)), routed like ``res()`` in rules/common.smk (``resources.<rule>.slurm_partition``,
  else ``cluster.gpu_partition`` / ``cluster.cpu_partition``, else the default partition),
  is compared with that partition's limits (MaxTime, MaxMemPerNode/MaxMemPerCPU,
  MaxCPUsPerNode) and its nodes (CPUs, RealMemory, GPUs in ``Gres``): a misfit is a
  ``[FAIL]`` naming the rule, what it asks and the limit;
* ``sbatch --test-only`` with the same request asks the scheduler itself, so limits doctor
  cannot read (QOS, associations, node features) come back with sbatch's own reason;
* the profile's job-status command works on this cluster: ``sacct`` needs slurmdbd, and the
  plugin quietly switches ``squeue`` back to ``sacct`` when MinJobAge < 3 x its init seconds.

The parsing and comparison are plain functions over ``scontrol show ... -o`` text
(tests/test_doctor_slurm.py runs them on fixture text, no SLURM needed).
"""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .paths import Layout

PROFILE = Layout.snakemake_profile_config(Path(__file__).resolve().parents[1] / "slurm")
# Plugin defaults (snakemake-executor-plugin-slurm 2.8.0).
PLUGIN_INIT_SECONDS = 40


def _check(name: str, fn) -> tuple[bool, str]:
    try:
        return True, fn()
    except Exception as err:  # doctor reports, it never raises
        return False, f"{type(err).__name__}: {err}"


def _version(module: str) -> str:
    mod = importlib.import_module(module)
    return getattr(mod, "__version__", "installed")


# -- what the workflow submits -------------------------------------------------------------------
@dataclass(frozen=True)
class Request:
    """One rule's largest SLURM request (what the plugin's sbatch call asks for)."""

    rule: str
    partition: str | None  # None = the cluster's default partition
    mem_mb: int
    cpus: int
    gpus: int
    minutes: int
    gpu_model: str | None = None

    def describe(self) -> str:
        gpu = f"{self.gpus} GPU{'s' if self.gpus != 1 else ''}" if self.gpus else "no GPU"
        if self.gpus and self.gpu_model:
            gpu += f" ({self.gpu_model})"
        return f"{self.cpus} CPU, {self.mem_mb} MB, {gpu}, {self.minutes} min"

    def sbatch_args(self) -> list[str]:
        """The resource part of the plugin's sbatch call (submit_string.py + set_gres_string)."""
        args = [*(["-p", self.partition] if self.partition else []), "-t", str(self.minutes),
                "--mem", str(self.mem_mb)]
        if not self.gpus:
            args.append("--ntasks=1")
        args.append(f"--cpus-per-task={self.cpus}")
        if self.gpus:
            args.append(f"--gpus={self.gpu_model}:{self.gpus}" if self.gpu_model else f"--gpus={self.gpus}")
        return args


def submitted_rules(cfg) -> list[str]:
    """Rules of this config's DAG that become cluster jobs (not `localrules`)."""
    from .config.resources import CHUNKED_RULES

    rules = [r for r in CHUNKED_RULES if r != "make_demo_slide" or cfg.uses_demo]
    if cfg.uses_demo:
        rules += ["demo_labels", "demo_benchmark"]
    from .training.workflow import model_feature_encoders

    rules.append("build_dataset")
    if cfg.training.enabled:
        rules.append("train_clip")
        if cfg.training.baselines:
            rules += ["baseline_data", "train_baseline"]
    if model_feature_encoders(cfg):
        rules.append("extract_model_features")
    from .mil.workflow import registered_feature_encoders

    if registered_feature_encoders(cfg):
        rules.append("extract_encoder_features")
    zs = cfg.evaluation.zeroshot
    if zs.enabled and zs.benchmarks and zs.models:
        rules += ["zeroshot", "zeroshot_table"]
        if zs.clip_benchmark_export:
            rules.append("zeroshot_export")
    mil = cfg.evaluation.mil
    if mil.enabled and mil.tasks:
        rules += ["mil_splits", "mil", "mil_table"]
    if cfg.instruct.enabled:
        rules.append("build_instruct")
    if cfg.agents.enabled:
        rules += ["agents_build_data", "agents_train"]
    rules.append("build_report")
    local = set(cfg.cluster.local_rules)
    return [r for r in rules if r not in local]


def largest_requests(cfg) -> list[Request]:
    """Each submitted rule's largest request, computed like res() in rules/common.smk."""
    from .config.resources import CHUNKED_RULES, RESOURCES_OF

    chunk = cfg.chunk_size()
    out = []
    for rule in submitted_rules(cfg):
        base = RESOURCES_OF.get(rule, rule)
        r = cfg.rule_resources(base)
        minutes = min(cfg.cluster.max_job_minutes, r.runtime * (chunk if base in CHUNKED_RULES else 1))
        partition = r.slurm_partition or (cfg.cluster.gpu_partition if r.gpu else cfg.cluster.cpu_partition)
        out.append(Request(rule, partition or None, r.mem_mb, r.cpus_per_task or r.threads,
                           r.gpu, minutes, r.gpu_model))
    return out


# -- what the cluster allows ---------------------------------------------------------------------
@dataclass
class Partition:
    name: str
    default: bool = False
    state: str = "UP"
    max_minutes: int | None = None  # None = unlimited
    max_mem_per_node: int | None = None  # MB
    max_mem_per_cpu: int | None = None
    max_cpus_per_node: int | None = None


@dataclass
class Node:
    name: str
    cpus: int
    mem_mb: int
    partitions: list[str] = field(default_factory=list)
    gpus: dict[str | None, int] = field(default_factory=dict)  # GPU type (None = untyped) -> count
    state: str = ""

    @property
    def gpu_total(self) -> int:
        return sum(self.gpus.values())


def parse_records(text: str) -> list[dict[str, str]]:
    """`scontrol show <thing> -o` output: one record per line of Key=Value fields (a value may
    contain spaces only in a few free-text keys, which doctor does not read)."""
    records = []
    for line in text.splitlines():
        line = line.strip()
        if not line or "=" not in line:
            continue
        rec = {}
        for m in re.finditer(r"(\S+?)=(\S*)", line):
            rec.setdefault(m.group(1), m.group(2))
        records.append(rec)
    return records


def parse_minutes(value: str | None) -> int | None:
    """A SLURM time limit (`UNLIMITED`, `30`, `02:00:00`, `1-12:00:00`, `2-0`) -> minutes."""
    if value is None or value.upper() in ("UNLIMITED", "INFINITE", "NONE", "N/A", ""):
        return None
    days = 0
    if "-" in value:
        d, value = value.split("-", 1)
        days = int(d)
        parts = [int(p) for p in value.split(":")] + [0, 0]
        h, m, s = parts[:3]
    else:
        parts = [int(p) for p in value.split(":")]
        if len(parts) == 1:
            h, m, s = 0, parts[0], 0
        elif len(parts) == 2:
            h, m, s = 0, parts[0], parts[1]
        else:
            h, m, s = parts[:3]
    return days * 1440 + h * 60 + m + (1 if s else 0)


def _int_or_none(value: str | None) -> int | None:
    if value is None:
        return None
    m = re.match(r"(\d+)", value)
    return int(m.group(1)) if m and value.upper() != "UNLIMITED" else None


def parse_gres(value: str | None) -> dict[str | None, int]:
    """Node `Gres=` -> GPUs by type: `gpu:4`, `gpu:a100:2(S:0-1),gpu:v100:2`, `(null)`."""
    out: dict[str | None, int] = {}
    for item in re.split(r",(?![^(]*\))", value or ""):
        item = re.sub(r"\(.*?\)", "", item).strip()
        parts = item.split(":")
        if parts[0] != "gpu" or len(parts) < 2:
            continue
        count = re.match(r"\d+", parts[-1])
        if not count:
            continue
        kind = parts[1] if len(parts) >= 3 else None
        out[kind] = out.get(kind, 0) + int(count.group())
    return out


def parse_partitions(text: str) -> dict[str, Partition]:
    out = {}
    for rec in parse_records(text):
        name = rec.get("PartitionName")
        if not name:
            continue
        out[name] = Partition(
            name=name, default=rec.get("Default", "NO").upper() == "YES",
            state=rec.get("State", "UP"), max_minutes=parse_minutes(rec.get("MaxTime")),
            max_mem_per_node=_int_or_none(rec.get("MaxMemPerNode")),
            max_mem_per_cpu=_int_or_none(rec.get("MaxMemPerCPU")),
            max_cpus_per_node=_int_or_none(rec.get("MaxCPUsPerNode")))
    return out


def parse_nodes(text: str) -> list[Node]:
    out = []
    for rec in parse_records(text):
        if "NodeName" not in rec:
            continue
        cpus = _int_or_none(rec.get("CPUEfctv")) or _int_or_none(rec.get("CPUTot")) or 0
        out.append(Node(name=rec["NodeName"], cpus=cpus, mem_mb=_int_or_none(rec.get("RealMemory")) or 0,
                        partitions=[p for p in rec.get("Partitions", "").split(",") if p],
                        gpus=parse_gres(rec.get("Gres")), state=rec.get("State", "")))
    return out


def check_request(req: Request, partitions: dict[str, Partition], nodes: list[Node]) -> str | None:
    """None when `req` fits some node of its partition within the partition's limits, else
    every reason why not ("; "-joined)."""
    if req.partition is None:
        default = [p for p in partitions.values() if p.default]
        if not default:
            return "no partition given and the cluster has no default partition"
        part = default[0]
    elif req.partition not in partitions:
        return (f"partition '{req.partition}' does not exist (partitions: "
                f"{', '.join(sorted(partitions)) or 'none'})")
    else:
        part = partitions[req.partition]
    where = f"partition '{part.name}'" + (" (default)" if req.partition is None else "")
    problems = []
    if not part.state.upper().startswith("UP"):
        problems.append(f"{where} is {part.state}")
    if part.max_minutes is not None and req.minutes > part.max_minutes:
        problems.append(f"asks {req.minutes} min > MaxTime {part.max_minutes} min of {where}")
    if part.max_mem_per_node is not None and req.mem_mb > part.max_mem_per_node:
        problems.append(f"asks {req.mem_mb} MB > MaxMemPerNode {part.max_mem_per_node} MB of {where}")
    if part.max_mem_per_cpu is not None and req.mem_mb > part.max_mem_per_cpu * req.cpus:
        problems.append(f"asks {req.mem_mb} MB > MaxMemPerCPU {part.max_mem_per_cpu} MB x "
                        f"{req.cpus} CPU of {where}")
    if part.max_cpus_per_node is not None and req.cpus > part.max_cpus_per_node:
        problems.append(f"asks {req.cpus} CPUs > MaxCPUsPerNode {part.max_cpus_per_node} of {where}")
    members = [n for n in nodes if part.name in n.partitions]
    if not members:
        return "; ".join(problems + [f"{where} has no nodes"])

    def gpus_of(n: Node) -> int:
        return n.gpus.get(req.gpu_model, 0) if req.gpu_model else n.gpu_total

    most_cpus, most_mem = max(n.cpus for n in members), max(n.mem_mb for n in members)
    if most_cpus < req.cpus:
        problems.append(f"asks {req.cpus} CPUs; the largest node of {where} has {most_cpus}")
    if most_mem < req.mem_mb:
        problems.append(f"asks {req.mem_mb} MB; the largest node of {where} has {most_mem} MB "
                        "(RealMemory)")
    if req.gpus:
        most = max(gpus_of(n) for n in members)
        kind = f"'{req.gpu_model}' GPUs" if req.gpu_model else "GPUs"
        if most == 0:
            problems.append(f"asks {req.gpus} GPU(s) but no node of {where} has {kind} (Gres)")
        elif most < req.gpus:
            problems.append(f"asks {req.gpus} {kind}; the nodes of {where} have at most {most}")
    if not problems and not [n for n in members if n.cpus >= req.cpus and n.mem_mb >= req.mem_mb
                             and gpus_of(n) >= req.gpus]:
        problems.append(f"no single node of {where} has {req.describe()} at once")
    return "; ".join(problems) or None


def check_requests(requests: list[Request], partitions: dict[str, Partition],
                   nodes: list[Node]) -> list[tuple[Request, str | None]]:
    return [(r, check_request(r, partitions, nodes)) for r in requests]


def status_command_problem(profile: dict, config_text: str, sacct_on_path: bool) -> str | None:
    """Why the profile's job-status command cannot see jobs finish on this cluster, or None.

    `config_text` is `scontrol show config`."""
    conf = dict(re.findall(r"^(\w+)\s*=\s*(.*?)\s*$", config_text, re.M))
    accounting = conf.get("AccountingStorageType", "")
    min_age = _int_or_none(conf.get("MinJobAge")) or 0
    init = int(profile.get("slurm-init-seconds-before-status-checks", PLUGIN_INIT_SECONDS))
    cmd = profile.get("slurm-status-command") or ("sacct" if sacct_on_path else "squeue")
    note = ""
    if cmd == "squeue" and sacct_on_path and min_age < 3 * init:
        cmd = "sacct"
        note = (f" (the profile says squeue, but MinJobAge {min_age} s < 3 x "
                f"slurm-init-seconds-before-status-checks {init} s makes the plugin use sacct)")
    if cmd == "sacct" and accounting.endswith("/none"):
        return (f"job status via sacct{note}, but this cluster has no accounting database "
                f"(AccountingStorageType={accounting}): Snakemake would never see a job finish. "
                "Set `slurm-status-command: squeue` in the profile (MinJobAge >= 3 x the init seconds)")
    return None


def _run(cmd: list[str], timeout: float = 15) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def sbatch_test_only(req: Request) -> str | None:
    """None when `sbatch --test-only` accepts the request, else sbatch's own message."""
    proc = _run(["sbatch", "--test-only", "--job-name", f"pathgen-doctor-{req.rule}",
                 *req.sbatch_args(), "--wrap", "true"])
    if proc.returncode == 0:
        return None
    return (proc.stderr.strip() or proc.stdout.strip() or f"rc {proc.returncode}").splitlines()[-1]


def slurm_checks(cfg, profile_path: Path | None = PROFILE, sbatch_test: bool = True
                 ) -> list[tuple[str, bool, str]]:
    """The SLURM checks against the live cluster; [] when SLURM is not reachable."""
    if not shutil.which("scontrol"):
        return []
    try:
        part_proc = _run(["scontrol", "show", "partition", "-o"])
        node_proc = _run(["scontrol", "show", "node", "-o"]) if part_proc.returncode == 0 else part_proc
    except (OSError, subprocess.TimeoutExpired) as err:
        return [("SLURM limits", True, f"skipped: scontrol did not answer ({err})")]
    if part_proc.returncode != 0 or node_proc.returncode != 0:
        why = (part_proc.stderr or node_proc.stderr or "").strip().splitlines()[-1:] or ["no answer"]
        return [("SLURM limits", True, f"skipped: SLURM not reachable ({why[0]})")]
    partitions, nodes = parse_partitions(part_proc.stdout), parse_nodes(node_proc.stdout)
    checks = []
    requests = largest_requests(cfg)
    bad = 0
    for req, problem in check_requests(requests, partitions, nodes):
        if problem is None and sbatch_test and shutil.which("sbatch"):
            try:
                reason = sbatch_test_only(req)
            except (OSError, subprocess.TimeoutExpired) as err:
                reason = None
                checks.append((f"sbatch --test-only {req.rule}", True, f"skipped ({err})"))
            if reason:
                problem = f"sbatch --test-only {' '.join(req.sbatch_args())}: {reason}"
        if problem:
            bad += 1
            checks.append((f"SLURM request {req.rule}", False,
                           f"{req.describe()} on {req.partition or 'the default partition'}: {problem}"))
    if not bad:
        by_part: dict[str, list[str]] = {}
        for req in requests:
            by_part.setdefault(req.partition or "(default)", []).append(req.rule)
        largest = max(requests, key=lambda r: (r.gpus, r.mem_mb, r.minutes), default=None)
        checks.append(("SLURM limits", True,
                       f"the largest request of each of {len(requests)} submitted rules fits "
                       + "; ".join(f"{p}: {', '.join(rs)}" for p, rs in by_part.items())
                       + (f" (largest: {largest.rule}, {largest.describe()})" if largest else "")
                       + (", and sbatch --test-only accepts each" if sbatch_test and shutil.which("sbatch") else "")))
    if profile_path is not None and Path(profile_path).exists():
        import yaml

        profile = yaml.safe_load(Path(profile_path).read_text()) or {}
        try:
            conf = _run(["scontrol", "show", "config"]).stdout
        except (OSError, subprocess.TimeoutExpired):
            conf = ""
        if conf:
            problem = status_command_problem(profile, conf, shutil.which("sacct") is not None)
            checks.append(("SLURM job status", problem is None,
                           problem or f"{profile.get('slurm-status-command', 'sacct')} "
                                      f"(profile {profile_path}) works on this cluster"))
    return checks


def engine_check(ccfg) -> str:
    """Managed serving: the engine's program is found where the caption rule runs (this
    machine's PATH or captioning.server.bin_dir; a SLURM node sees the same shared paths)."""
    exe = ccfg.engine_executable()
    found = shutil.which(exe)
    if not found:
        raise FileNotFoundError(
            f"{exe!r} ({ccfg.server.engine} engine of captioning.serve: managed) is not found: "
            "create its env from envs/engines/<engine>.yaml and set captioning.server.bin_dir "
            "to its bin/ folder, or put it on PATH for the caption jobs")
    if ccfg.server.engine == "sglang":
        probe = subprocess.run([found, "-c", "import sglang"], capture_output=True, timeout=60)
        if probe.returncode:
            raise ModuleNotFoundError(f"{found} cannot import sglang; install envs/engines/sglang.yaml")
    return f"{ccfg.server.engine}: {found}"


def configured_encoders(cfg) -> list[str]:
    """The encoders a run loads weights of: features.encoder and, with MIL tasks,
    evaluation.mil.encoders."""
    names = [cfg.features.encoder]
    mil = cfg.evaluation.mil
    if mil.enabled and mil.tasks:
        names += [e for e in mil.encoders if e not in names]
    return names


def _seen_mpp(cfg, spec) -> float | None:
    """µm per pixel at which the model sees the patches: the patch side over the side it is
    read at (the card's resize, else its input size)."""
    side = spec.resize or spec.image_size or spec.model_kwargs.get("img_size")
    if not side:
        return None
    um, _, _ = cfg.tiling.geometry()
    return um / float(side)


def encoder_weights_check(cfg, env=None) -> tuple[bool, str] | None:
    """Gated Hub weights of a configured encoder need HF_TOKEN (or a stored `hf auth login`
    token, or HF_HUB_OFFLINE with a filled cache); also notes an encoder whose patches reach
    it at another µm/px than its card's. None when no configured encoder has either."""
    import os

    from .encoders.weights import HF_TOKEN_VAR

    env = os.environ if env is None else env
    known = cfg.all_encoders()
    specs = {n: known[n] for n in configured_encoders(cfg) if n in known}
    local = lambda s: s.pretrained is not None and Path(s.pretrained).exists()  # noqa: E731
    gated = [n for n, s in specs.items() if s.gated and s.pretrained and not local(s)]
    notes = []
    for n, s in specs.items():
        seen = _seen_mpp(cfg, s)
        if s.mpp and seen and abs(seen / s.mpp - 1) > 0.25:
            um, _, _ = cfg.tiling.geometry()
            side = round(um / seen)  # the side the model reads a patch at
            notes.append(f"{n} expects {s.mpp:g} µm/px but the {um:g} µm patches reach it at "
                         f"{seen:.2f} µm/px (tiling.patch_size_um: {s.mpp * side:g} = {side} px "
                         f"at {s.mpp:g} µm/px)")
    if not gated and not notes:
        return None
    note = ("; note: " + "; ".join(notes)) if notes else ""
    if not gated:
        return True, "no gated weights" + note
    pages = ", ".join(f"{n} ({specs[n].card or specs[n].pretrained})" for n in gated)
    if env.get(HF_TOKEN_VAR):
        return True, f"{HF_TOKEN_VAR} is set for the gated weights of {pages}{note}"
    if env.get("HF_HUB_OFFLINE") not in (None, "", "0"):
        return True, f"HF_HUB_OFFLINE: gated weights of {pages} must be in the Hugging Face cache{note}"
    stored = None
    try:
        from huggingface_hub import get_token

        stored = get_token()
    except Exception:  # no huggingface_hub or unreadable token file: HF_TOKEN is the way
        pass
    if stored:
        return True, (f"a stored Hugging Face token (hf auth login) serves the gated weights of "
                      f"{pages}; jobs on other machines need it too, or {HF_TOKEN_VAR}{note}")
    return False, (f"{pages} {'has' if len(gated) == 1 else 'have'} gated weights: request access "
                   f"on the model page, then set {HF_TOKEN_VAR} to a read token of that account "
                   f"where the jobs run{note}")


def run_checks(cfg_args) -> list[tuple[str, bool, str]]:
    from .cli import config_from_args

    checks = []

    def openslide_lib():
        import openslide

        return f"openslide-python {openslide.__version__}, library {openslide.__library_version__}"

    def torch_dev():
        import torch

        cuda = torch.cuda.is_available()
        return f"torch {torch.__version__}; CUDA {'available: ' + torch.cuda.get_device_name(0) if cuda else 'not available (CPU only)'}"

    def config():
        cfg = config_from_args(cfg_args)
        from .cohort import list_slides

        slides = list_slides(cfg)
        missing = [s for s, r in slides.items() if not r.path.exists()]
        note = f"{len(slides)} slides"
        if cfg.demo.enabled and missing:
            note += " (demo slides are generated by the workflow)"
        elif missing:
            raise FileNotFoundError(f"{len(missing)} slide files missing, e.g. {slides[missing[0]].path}")
        return note

    for name, fn in [("openslide", openslide_lib), ("torch", torch_dev),
                     ("open_clip", lambda: _version("open_clip")),
                     ("snakemake", lambda: _version("snakemake")),
                     ("config + slides", config),
                     ("sbatch (SLURM)", lambda: shutil.which("sbatch") or "not on PATH (only needed for --profile slurm)")]:
        ok, msg = _check(name, fn)
        checks.append((name, ok, msg))
    try:
        cfg = config_from_args(cfg_args)
    except Exception:
        return checks  # already reported by "config + slides"
    if cfg.captioning.serve == "managed":
        checks.append(("caption engine",) + _check("caption engine",
                                                   lambda: engine_check(cfg.captioning)))
    weights = encoder_weights_check(cfg)
    if weights is not None:
        checks.append(("encoder weights",) + weights)
    profile = getattr(cfg_args, "profile", None)
    ok, res = _check("SLURM", lambda: slurm_checks(
        cfg, Layout.snakemake_profile_config(profile) if profile else PROFILE,
        sbatch_test=not getattr(cfg_args, "no_sbatch_test", False)))
    checks.extend(res if ok else [("SLURM", False, res)])
    return checks


def register(sub) -> None:
    from .cli import add_config_args

    p = sub.add_parser("doctor", help="Check the environment, config and slides before a run "
                                      "(and, when SLURM answers, each rule's request against the partitions)")
    add_config_args(p)
    p.add_argument("--profile", default=None,
                   help="Snakemake profile folder whose config.yaml sets the SLURM status command "
                        "(default: the checkout's slurm/)")
    p.add_argument("--no-sbatch-test", action="store_true",
                   help="Do not ask the scheduler (`sbatch --test-only`) about each rule's largest request")
    p.set_defaults(func=_main)


def _main(args) -> int:
    checks = run_checks(args)
    for name, ok, msg in checks:
        print(f"[{'ok' if ok else 'FAIL'}] {name}: {msg}")
    return 0 if all(ok for _, ok, _ in checks) else 1
