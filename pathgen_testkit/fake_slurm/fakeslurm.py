"""A fake SLURM client for bench/submissions.py: sbatch, squeue, sacct, sinfo, scontrol, scancel,
sacctmgr and sshare as tiny stdlib-only scripts (the files next to this one call main()).

State lives in the folder named by $FAKE_SLURM_STATE:
  targets.json   {"rule:k=v,...": [declared output, log and benchmark paths]} for every
                 job the workflow can submit (bench/submissions.py writes it from `snakemake -n`);
  sbatch.jsonl   one JSON line per sbatch call: id, the full argv, the script read from stdin
                 (when the plugin passes /dev/stdin), and the target jobs found in it;
  status         "<jobid>|<state>|<job name>" lines that squeue/sacct answer from;
  calls.log      every command run, with its argv (to see what the plugin probes).

sbatch does what a cluster would do for the workflow, minus the work: it reads the Snakemake
jobstep command it was given (--wrap, or the script on stdin; for job arrays also the
--slurm-jobstep-array-execs payload), takes its `--target-jobs` and creates (empty) each
target's declared output, log and benchmark files, so the submitting Snakemake sees the
job finished, moves on and submits what depended on it. The job is then COMPLETED for
sacct/squeue. A target that is not in targets.json makes sbatch fail (exit 1), like a
rejected submission (bench/submissions.py reports it as a FAIL).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shlex
import sys
import time
import zlib
from pathlib import Path


def _state() -> Path:
    d = os.environ.get("FAKE_SLURM_STATE")
    if not d:
        sys.stderr.write("fake slurm: FAKE_SLURM_STATE is not set\n")
        sys.exit(2)
    return Path(d)


class _Locked:
    """Exclusive lock over the state folder (sbatch runs from two submission threads)."""

    def __init__(self, state: Path):
        self.path = state / ".lock"

    def __enter__(self):
        self.fh = open(self.path, "a")
        fcntl.flock(self.fh, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


def _log_call(state: Path, name: str, argv: list[str]) -> None:
    with open(state / "calls.log", "a") as fh:
        fh.write(f"{time.time():.3f}\t{name}\t{shlex.join(argv)}\n")


def _opt(argv: list[str], *names: str) -> str | None:
    """Value of an sbatch option given as `--name value`, `--name=value` or `-x value`."""
    for i, a in enumerate(argv):
        for n in names:
            if a == n and i + 1 < len(argv):
                return argv[i + 1]
            if n.startswith("--") and a.startswith(n + "="):
                return a[len(n) + 1:]
    return None


def target_jobs(command: str) -> list[str]:
    """The `--target-jobs` items of a Snakemake jobstep command line."""
    words = shlex.split(command)
    out: list[str] = []
    for i, w in enumerate(words):
        if w == "--target-jobs":
            for item in words[i + 1:]:
                if item.startswith("--"):
                    break
                out.append(item)
    return out


def spec_key(item: str) -> str:
    """'rule:k=v,k2=v2' (as the executor encodes it) -> the same with keys sorted."""
    rule, _, wc = item.partition(":")
    pairs = []
    for part in _split_commas(wc):
        k, _, v = part.partition("=")
        if len(v) >= 2 and v[0] == v[-1] == '"':
            v = v[1:-1]
        pairs.append((k, v))
    return rule + ":" + ",".join(f"{k}={v}" for k, v in sorted(pairs))


def _split_commas(s: str) -> list[str]:
    parts, cur, quoted = [], "", False
    for ch in s:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        parts.append(cur)
    return parts


def _array_execs(command: str) -> list[str]:
    """The per-task commands of an array submission (--slurm-jobstep-array-execs payload)."""
    for w in shlex.split(command):
        if w.startswith("--slurm-jobstep-array-execs="):
            payload = json.loads(base64.b64decode(w.split("=", 1)[1]))
            return [zlib.decompress(bytes.fromhex(v)).decode() for _, v in
                    sorted(payload.items(), key=lambda kv: int(kv[0]))]
    return []


def sbatch(argv: list[str]) -> int:
    state = _state()
    _log_call(state, "sbatch", argv)
    script = sys.stdin.read() if "/dev/stdin" in argv else None
    command = _opt(argv, "--wrap")
    if command is None:
        command = script or ""
    if script is not None and "--slurm-jobstep-array-execs" in script:
        # script mode puts the payload on its own line after the base command
        command = script.replace("\n--slurm-jobstep-array-execs\n", " --slurm-jobstep-array-execs=")
    execs = [command] + _array_execs(command)
    targets = [[spec_key(t) for t in target_jobs(c)] for c in execs]
    known = json.loads((state / "targets.json").read_text())
    unknown = [t for ts in targets for t in ts if t not in known]
    if unknown or not any(targets):
        sys.stderr.write(f"sbatch: error: fake cluster: unknown target job(s) {unknown or execs}\n")
        with open(state / "rejected.jsonl", "a") as fh:
            fh.write(json.dumps({"argv": argv, "script": script, "targets": targets}) + "\n")
        return 1
    for ts in targets:
        for t in ts:
            for out in known[t]:
                p = Path(out)
                p.parent.mkdir(parents=True, exist_ok=True)
                p.touch()
    name = _opt(argv, "--job-name", "-J") or ""
    array = _opt(argv, "--array", "-a")
    with _Locked(state):
        counter = state / "counter"
        jobid = int(counter.read_text()) + 1 if counter.exists() else 1000
        counter.write_text(str(jobid))
        with open(state / "sbatch.jsonl", "a") as fh:
            fh.write(json.dumps({"id": jobid, "argv": argv, "script": script,
                                 "targets": targets, "time": time.time()}) + "\n")
        with open(state / "status", "a") as fh:
            if array:
                lo, _, hi = array.partition("-")
                for i in range(int(lo), int(hi or lo) + 1):
                    fh.write(f"{jobid}_{i}|COMPLETED|{name}\n")
            fh.write(f"{jobid}|COMPLETED|{name}\n")
    print(f"{jobid}" if "--parsable" in argv else f"Submitted batch job {jobid}")
    return 0


def _status_lines(name: str | None) -> list[str]:
    path = _state() / "status"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        jobid, state, job_name = line.split("|", 2)
        if name is None or job_name == name:
            out.append(f"{jobid}|{state}")
    return out


def sacct(argv: list[str]) -> int:
    _log_call(_state(), "sacct", argv)
    if "JobIdRaw,State" in " ".join(argv) or "--format=JobIdRaw,State" in argv:
        for line in _status_lines(_opt(argv, "--name")):
            print(line)
    elif "-nu" in argv:  # the plugin guessing an account: "none" = the cluster uses none
        print("none")
    return 0


def squeue(argv: list[str]) -> int:
    _log_call(_state(), "squeue", argv)
    for line in _status_lines(_opt(argv, "--name", "-n")):
        print(line)
    return 0


def sinfo(argv: list[str]) -> int:
    _log_call(_state(), "sinfo", argv)
    parts = os.environ.get("FAKE_SLURM_PARTITIONS", "cpu*,gpu").split(",")
    print("PARTITION")
    for p in parts:
        print(p)
    return 0


def scontrol(argv: list[str]) -> int:
    _log_call(_state(), "scontrol", argv)
    if argv[:2] == ["show", "config"]:
        print("Configuration data as of fake slurm\n"
              "MaxArraySize            = 1001\n"
              "MinJobAge               = 300 sec\n"
              "SLURM_VERSION           = 23.11.0")
    elif argv[:2] == ["show", "partition"]:
        for p in os.environ.get("FAKE_SLURM_PARTITIONS", "cpu*,gpu").split(","):
            print(f"PartitionName={p.rstrip('*')}\n   MaxTime=UNLIMITED State=UP\n")
    return 0


def _quiet(name: str):
    def run(argv: list[str]) -> int:
        _log_call(_state(), name, argv)
        return 0
    return run


COMMANDS = {"sbatch": sbatch, "sacct": sacct, "squeue": squeue, "sinfo": sinfo,
            "scontrol": scontrol, "scancel": _quiet("scancel"), "sacctmgr": _quiet("sacctmgr"),
            "sshare": _quiet("sshare")}


def main() -> int:
    name = os.path.basename(sys.argv[0])
    return COMMANDS[name](sys.argv[1:])
