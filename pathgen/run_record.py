"""The run's record: the effective config of each workflow run.

At the start of every run that executes jobs (the Snakefile's ``onstart``), the workflow
writes ``<results_dir>/run_config.yaml``: the config the run uses (its layers merged over the
built-in defaults and, for the demo, the demo overlay; validated), the source of every value
(``built-in default``, ``demo overlay``, ``config.yaml``, ``--configfile FILE``, ``--config``)
and the layers themselves; and ``<workdir>/.pathgen/last_run.yaml`` names that file. The
subcommands that read a run's state (status, recover, doctor, report, export, audit) use the
run's own config by default (``pathgen.paths.Layout.find_run_config``,
``pathgen.cli.config_from_args``). Paths come from the caller (``Layout``).
"""

from __future__ import annotations

import datetime as _dt
import os
import shlex
from pathlib import Path
from typing import Any

import yaml

from .atomic import write_text
from .config import SET, ConfigError, Layer, Resolved, resolve_config
from .config.layers import BUILTIN

FORMAT = "pathgen-run-config/1"
RUN_RECORD = "run record"


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def write_run_record(resolved: Resolved, path: str | os.PathLike, pointer: str | os.PathLike,
                     argv: list[str] | None = None) -> Path:
    """Write the run's record to ``path`` and name it in ``pointer`` (absolute paths)."""
    path = Path(path).resolve()
    info = {"format": FORMAT, "written": _now(), "workdir": str(Path.cwd()),
            "command": shlex.join(argv) if argv else None}
    header = ("# The effective config of the latest pathgen run writing into this folder (written "
              "when it started).\n# `sources` says where each value came from; pathgen status, "
              "doctor, report and export read it by default.\n")
    write_text(path, header + yaml.safe_dump(resolved.record(**info), sort_keys=False,
                                             allow_unicode=True))
    write_text(pointer, yaml.safe_dump({"run_config": str(path), "written": info["written"],
                                        "command": info["command"]}, sort_keys=False))
    return path


def read_pointer(pointer: str | os.PathLike) -> Path | None:
    """The record a pointer file names, when both exist."""
    pointer = Path(pointer)
    if not pointer.is_file():
        return None
    try:
        target = (yaml.safe_load(pointer.read_text()) or {}).get("run_config")
    except (yaml.YAMLError, AttributeError):
        return None
    return Path(target) if target and Path(target).is_file() else None


def read_run_record(path: str | os.PathLike) -> dict[str, Any]:
    try:
        rec = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read the run record {path}: {err}") from None
    if not isinstance(rec, dict) or rec.get("format") != FORMAT or not isinstance(rec.get("config"), dict):
        raise ConfigError(f"{path} is not a pathgen run record ({FORMAT})")
    return rec


def recorded_config(path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> Resolved:
    """The recorded run's config (``overrides``: the CLI's --set, over it) with the sources
    the run recorded."""
    rec = read_run_record(path)
    layers = [Layer(RUN_RECORD, rec["config"], str(path))]
    if overrides:
        layers.append(Layer(SET, dict(overrides), dotted=True))
    resolved = resolve_config(layers, demo=False)
    recorded = rec.get("sources") or {}
    resolved.sources = {k: recorded.get(k, s) if s == RUN_RECORD else s
                        for k, s in resolved.sources.items()}
    resolved.layers = list(rec.get("layers") or []) + resolved.layers[2:]
    return resolved


def run_layers(path: str | os.PathLike) -> list[dict]:
    """The recorded run's layers ({source, path?, values?})."""
    return list(read_run_record(path).get("layers") or [])


def describe(path: str | os.PathLike) -> str:
    """One line: which run's config this is (for the subcommands' note on stderr)."""
    rec = read_run_record(path)
    layers = [str(la.get("source")) for la in rec.get("layers") or [] if la.get("source") != BUILTIN]
    return (f"the config of the run started {rec.get('written', '?')} (built-ins + "
            f"{' + '.join(layers) or 'nothing else'}), recorded in {path}")
