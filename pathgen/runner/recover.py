"""`pathgen recover`: make "rerun the same command" work after snakemake itself was killed.

A snakemake killed with SIGKILL (OOM killer, `kill -9`, a lost login node) leaves its lock
in ``.snakemake/locks`` (the rerun meets LockException) and its running jobs' outputs marked
incomplete in ``.snakemake/incomplete`` (IncompleteFilesException; the workflow profile
``profiles/default/config.yaml`` sets ``rerun-incomplete: true`` so the rerun redoes them).

``pathgen recover`` removes the lock only when it is provably stale: no live process is a
snakemake, or a job snakemake started, working in that directory (found via
``/proc/<pid>/cwd`` and ``/proc/<pid>/cmdline``). Then it runs ``snakemake --unlock`` there
and prints what it found and did. If one is alive it refuses (exit 1) and names its PID: an
orphaned job still writing its outputs would race the rerun.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO_SNAKEFILE = Path(__file__).resolve().parents[2] / "Snakefile"


@dataclass
class Proc:
    pid: int
    uid: int | None
    cwd: Path | None  # None: not readable (another user's process)
    argv: list[str]

    @property
    def command(self) -> str:
        return shlex.join(self.argv)[:300]


def _is_python(arg0: str) -> bool:
    return os.path.basename(arg0).startswith(("python", "pypy"))


def is_snakemake(argv: list[str]) -> bool:
    """snakemake itself (`snakemake`, `python .../bin/snakemake`, `python -m snakemake`) or a
    job it started (a script under `.snakemake/`: scripts/, conda envs, shadow dirs)."""
    if not argv:
        return False
    if os.path.basename(argv[0]) == "snakemake":
        return True
    if _is_python(argv[0]):
        rest = [a for a in argv[1:] if a not in ("-u", "-B", "-O", "-E", "-s", "-I")]
        if rest and os.path.basename(rest[0]) == "snakemake":
            return True
        if rest[:2] == ["-m", "snakemake"] or (rest and rest[0] == "-msnakemake"):
            return True
    return any("/.snakemake/" in a or a.startswith(".snakemake/") for a in argv)


def _directory_arg(argv: list[str], cwd: Path | None) -> Path | None:
    """snakemake's --directory/-d, resolved against the process's cwd."""
    for i, a in enumerate(argv):
        val = None
        if a in ("--directory", "-d") and i + 1 < len(argv):
            val = argv[i + 1]
        elif a.startswith("--directory="):
            val = a.split("=", 1)[1]
        if val is not None:
            p = Path(val)
            if not p.is_absolute():
                if cwd is None:
                    return None
                p = cwd / p
            return Path(os.path.realpath(p))
    return None


def processes(proc_root: Path = Path("/proc")) -> list[Proc]:
    out = []
    me = os.getpid()
    for entry in proc_root.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:  # exited meanwhile
            continue
        argv = [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]
        if not argv:  # kernel thread or zombie
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            cwd = None
        try:
            uid = entry.stat().st_uid
        except OSError:
            uid = None
        out.append(Proc(int(entry.name), uid, cwd, argv))
    return out


def lock_files(workdir: Path) -> list[Path]:
    d = workdir / ".snakemake" / "locks"
    return sorted(p for p in d.iterdir() if p.is_file()) if d.is_dir() else []


def incomplete_markers(workdir: Path) -> list[Path]:
    d = workdir / ".snakemake" / "incomplete"
    return sorted(p for p in d.iterdir() if p.is_file()) if d.is_dir() else []


def live_users(workdir: Path, procs: list[Proc] | None = None) -> list[tuple[Proc, str]]:
    """Snakemake processes (or their jobs) that work in ``workdir``, with the reason."""
    workdir = Path(os.path.realpath(workdir))
    lock_uids = set()
    for p in lock_files(workdir):
        try:
            lock_uids.add(p.stat().st_uid)
        except OSError:
            pass
    found = []
    marker = f"{workdir}/.snakemake/"
    for pr in procs if procs is not None else processes():
        if not is_snakemake(pr.argv):
            continue
        cwd = Path(os.path.realpath(pr.cwd)) if pr.cwd is not None else None
        if cwd == workdir:
            found.append((pr, f"its working directory is {workdir}"))
        elif _directory_arg(pr.argv, cwd) == workdir:
            found.append((pr, f"it runs with --directory {workdir}"))
        elif any(a.startswith(marker) for a in pr.argv):
            found.append((pr, f"it runs a job file under {marker}"))
        elif cwd is None and pr.uid in lock_uids:
            found.append((pr, "its working directory is unreadable and its user owns the lock"))
    return found


def default_snakefile(workdir: Path) -> Path | None:
    for cand in (workdir / "Snakefile", workdir / "workflow" / "Snakefile"):
        if cand.is_file():
            return None  # snakemake finds it itself
    return REPO_SNAKEFILE if REPO_SNAKEFILE.is_file() else None


def run_config_args(workdir: Path) -> list[str]:
    """The killed run's --configfile files and --config values (from the config it recorded,
    pathgen/run_record.py), so `snakemake --unlock` reads the config that run read (a
    working directory may have no config.yaml at all)."""
    from ..config import ConfigError
    from ..paths import Layout
    from ..run_record import run_layers

    path = Layout.find_run_config(workdir)
    if path is None:
        return []
    try:
        layers = run_layers(path)
    except ConfigError:  # an unreadable record: unlock with the Snakefile's own config
        return []
    files = [la["path"] for la in layers
             if str(la.get("source", "")).startswith("--configfile") and la.get("path")]
    values = [la["values"] for la in layers if la.get("source") == "--config" and la.get("values")]
    args = ["--configfile", *files] if files else []
    if values:  # --config as one more YAML file: the same merge, no quoting of values
        from ..atomic import write_text

        extra = Layout.unlock_config(workdir)
        write_text(extra, yaml.safe_dump(values[-1], sort_keys=False))
        args = ["--configfile", *files, str(extra)]
    return args


def recover(workdir: str | os.PathLike = ".", snakefile: str | os.PathLike | None = None,
            out=sys.stdout, procs: list[Proc] | None = None) -> int:
    workdir = Path(os.path.realpath(workdir))
    say = lambda msg: print(f"pathgen recover: {msg}", file=out, flush=True)  # noqa: E731
    if not (workdir / ".snakemake").is_dir():
        say(f"{workdir} has no .snakemake folder: nothing to recover")
        return 0
    users = live_users(workdir, procs)
    if users:
        for pr, why in users:
            say(f"REFUSED: PID {pr.pid} is a live snakemake process or job using {workdir} "
                f"({why}): {pr.command}")
        pids = " ".join(str(pr.pid) for pr, _ in users)
        say(f"nothing changed. Wait for it to finish, or stop it (kill {pids}), then rerun "
            "`pathgen recover`")
        return 1
    say(f"no live snakemake process or job uses {workdir} (checked /proc/*/cwd and cmdline)")
    locks = lock_files(workdir)
    incomplete = incomplete_markers(workdir)
    if not locks:
        say("no lock in .snakemake/locks: nothing to unlock")
    else:
        say(f"stale lock: {len(locks)} file(s) in {workdir / '.snakemake' / 'locks'} "
            f"({', '.join(p.name for p in locks[:5])}{' ...' if len(locks) > 5 else ''})")
        cmd = [sys.executable, "-m", "snakemake", "--unlock", "--cores", "1"]
        sf = Path(snakefile) if snakefile is not None else default_snakefile(workdir)
        if sf is not None:
            cmd += ["--snakefile", str(Path(sf).resolve())]
        cmd += ["--directory", str(workdir)] + run_config_args(workdir)
        say(f"running: {shlex.join(cmd)} (in {workdir})")
        proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
        if proc.returncode != 0:
            say(f"snakemake --unlock failed (rc {proc.returncode}):\n"
                f"{(proc.stdout + proc.stderr)[-3000:]}")
            return proc.returncode or 1
        left = lock_files(workdir)
        if left:
            say(f"snakemake --unlock ran but {len(left)} lock file(s) remain: {left}")
            return 1
        say("unlocked: .snakemake/locks is empty")
    if incomplete:
        say(f"{len(incomplete)} output(s) of the killed run are marked incomplete; the rerun "
            "regenerates them (rerun-incomplete: true in profiles/default/config.yaml, or pass "
            "--rerun-incomplete)")
    say("now rerun the same snakemake command")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "recover", help="After snakemake was killed: unlock the working directory if no "
                        "snakemake process or job still uses it, so the same command can rerun",
        description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("--directory", "-d", default=".",
                   help="snakemake working directory (default: the current one)")
    p.add_argument("--snakefile", "-s", default=None,
                   help="Snakefile for `snakemake --unlock` (default: ./Snakefile, else the "
                        "pathgen repo's)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    return recover(args.directory, args.snakefile)

