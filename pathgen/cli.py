"""The `pathgen` command: one subcommand per stage, each working on plain paths.

Stage modules register themselves through a ``register(subparsers)`` function; the list
below is the only place that names them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from dataclasses import dataclass, replace
from typing import Any, Callable

import yaml

from . import __version__
from .config import ConfigError, PathgenConfig, Resolved, config_layers, resolve_config

STAGE_MODULES = [
    "pathgen.demo.cli",
    "pathgen.tiling.cli",
    "pathgen.features.cli",
    "pathgen.export.cli",
    "pathgen.selection.cli",
    "pathgen.captioning.cli",
    "pathgen.dataset.cli",
    "pathgen.training.cli",
    "pathgen.zeroshot.cli",
    "pathgen.mil.cli",
    "pathgen.instruct.cli",
    "pathgen.agents.cli",
    "pathgen.report.cli",
    "pathgen.audit.cli",
    "pathgen.doctor",
    "pathgen.runner.status",
    "pathgen.runner.recover",
]


# Subcommands that read a run's state: without --config/--configfile they use the config the
# latest workflow run recorded (pathgen/run_record.py), not ./config.yaml alone.
RUN_STATE_COMMANDS = ("status", "recover", "doctor", "report", "export", "audit")


def add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, metavar="FILE",
                        help="YAML config used instead of ./config.yaml (default: ./config.yaml "
                             "when present, else built-ins)")
    parser.add_argument("--configfile", default=[], nargs="+", action="extend", metavar="FILE",
                        help="YAML file(s) merged over ./config.yaml (or --config), in order, as "
                             "`snakemake --configfile` does")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="Override a config key, e.g. --set tiling.patch_size_um=128 (repeatable)")


@dataclass(frozen=True)
class FlagOverride:
    """A convenience flag as the override it stands for: ``FLAG VALUE`` is ``--set KEY=VALUE``
    with VALUE as argparse typed it (a string stays a string: no YAML parsing). ``key`` is a
    dotted key, or a function of the config the other overrides give that returns one (and
    may raise ConfigError when the flag does not apply there)."""

    flag: str
    key: str | Callable[[PathgenConfig], str]
    value: Any


class _ConfigFlag(argparse.Action):
    """Records a :class:`FlagOverride` in ``args.overrides``, the list ``--set`` appends to,
    so flags and ``--set`` apply in command-line order (the last one wins)."""

    def __init__(self, option_strings, dest, config_key, multiple=False, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.config_key, self.multiple = config_key, multiple

    def __call__(self, parser, namespace, values, option_string=None):
        value = self.const if self.nargs == 0 else values
        items = list(getattr(namespace, "overrides", None) or [])
        if self.multiple:  # repeatable flag: one list-valued override, e.g. [single, ensemble]
            value = [*(getattr(namespace, self.dest, None) or []), value]
            items = [o for o in items if not (isinstance(o, FlagOverride) and o.key == self.config_key)]
        items.append(FlagOverride(option_string or self.option_strings[0], self.config_key, value))
        namespace.overrides = items
        setattr(namespace, self.dest, value)


def add_config_flag(parser: argparse.ArgumentParser, *flags: str,
                    key: str | Callable[[PathgenConfig], str], multiple: bool = False,
                    **kwargs) -> argparse.Action:
    """Add a convenience flag that is the config override ``--set KEY=VALUE`` (merged into the
    raw config before validation, like ``--set``). ``kwargs`` go to ``add_argument`` (type,
    choices, help, ...); ``const=V`` makes a switch that sets KEY to V; ``multiple``: the flag
    repeats and KEY gets the list. ``args.<dest>`` still holds the value (None when absent)."""
    if "const" in kwargs:
        kwargs.setdefault("nargs", 0)
    if isinstance(key, str):
        value = json.dumps(kwargs["const"]) if "const" in kwargs else "VALUE"
        kwargs["help"] = f"{kwargs.get('help') or ''} (= --set {key}={value})".lstrip()
    return parser.add_argument(*flags, action=_ConfigFlag, config_key=key, multiple=multiple,
                               default=None, **kwargs)


def add_override(args: argparse.Namespace, flag: str, key: str, value: Any) -> None:
    """Record a flag's override by hand (a flag whose value is built from several arguments,
    e.g. `pathgen train --data ... --csv-separator ...` -> training.stages)."""
    args.overrides = [*(getattr(args, "overrides", None) or []), FlagOverride(flag, key, value)]


def flag_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """``{key: value}`` of the convenience flags given (dotted keys; --set excluded)."""
    return {o.key: o.value for o in getattr(args, "overrides", None) or []
            if isinstance(o, FlagOverride) and isinstance(o.key, str)}


def _overrides(args: argparse.Namespace) -> list[FlagOverride]:
    """``--set`` items and convenience flags, in command-line order."""
    out = []
    for item in getattr(args, "overrides", None) or []:
        if isinstance(item, FlagOverride):
            out.append(item)
            continue
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {item}: the value is read as YAML and this is not valid "
                              f"YAML ({err.problem}); quote it, e.g. {key}='\"{value}\"'") from None
        out.append(FlagOverride("--set", key, value))
    return out


_NOTED: set[str] = set()


def _load(args: argparse.Namespace, items: list[FlagOverride]) -> Resolved:
    merged: dict[str, Any] = {}
    for o in items:  # a repeated key moves to the end: the later one is applied last
        merged.pop(o.key, None)
        merged[o.key] = o.value
    path, files = getattr(args, "config", None), list(getattr(args, "configfile", None) or [])
    try:
        record = None
        if path is None and not files and getattr(args, "command", None) in RUN_STATE_COMMANDS:
            from .paths import Layout

            record = Layout.find_run_config()
        if record is not None:
            from .run_record import describe, recorded_config

            if str(record) not in _NOTED:
                _NOTED.add(str(record))
                print(f"pathgen: using {describe(record)}; --config/--configfile read another",
                      file=sys.stderr)
            return recorded_config(record, merged)
        return resolve_config(config_layers(path, files, merged))
    except ConfigError as err:
        named = [f"  ({o.flag} sets '{o.key}')" for o in items
                 if o.flag != "--set" and f"{o.key}" in str(err)]
        if not named:
            raise
        raise ConfigError("\n".join([str(err), *dict.fromkeys(named)])) from None


def resolved_from_args(args: argparse.Namespace) -> Resolved:
    """:func:`config_from_args` with the source of each value (pathgen.config.layers)."""
    items = _overrides(args)
    if any(callable(o.key) for o in items):
        first = _load(args, [o for o in items if isinstance(o.key, str)]).config
        items = [replace(o, key=o.key(first)) if callable(o.key) else o for o in items]
    return _load(args, items)


def config_from_args(args: argparse.Namespace) -> PathgenConfig:
    """The validated config, one semantics with the workflow (pathgen/config/layers.py):
    built-in defaults < the demo overlay (while the demo is the slide source) < --config FILE
    (default ./config.yaml) < each --configfile FILE < every ``--set`` and convenience flag
    (:func:`add_config_flag`) in command-line order; one validation. The subcommands that
    read a run's state (RUN_STATE_COMMANDS) start, without --config/--configfile, from the
    config the latest workflow run recorded (<results_dir>/run_config.yaml). A flag whose key
    depends on the config (``caption --model``) takes its key from the config the other
    overrides give."""
    return resolved_from_args(args).config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pathgen", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"pathgen {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in STAGE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name and name.startswith(err.name):  # stage not present in this build
                continue
            raise
        module.register(sub)
    vc = sub.add_parser("validate-config", help="Validate a config file and print it resolved")
    add_config_args(vc)
    vc.add_argument("--sources", action="store_true",
                    help="print each key's value and where it came from (built-in default, demo "
                         "overlay, config.yaml, --configfile FILE, --set)")
    vc.set_defaults(func=_validate_config)
    return parser


def _validate_config(args) -> int:
    resolved = resolved_from_args(args)
    if not args.sources:
        print(yaml.safe_dump(resolved.config.model_dump(mode="json"), sort_keys=False))
        return 0
    print("layers: " + " < ".join(la["source"] for la in resolved.layers))
    flat = _flatten(resolved.config.model_dump(mode="json"))
    for key, src in resolved.sources.items():
        print(f"{key}: {json.dumps(flat.get(key), ensure_ascii=False)}  [{src}]")
    return 0


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: value}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ConfigError as err:
        print(f"pathgen: configuration error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # missing file, disk full, read-only output (the message names the path)
        print(f"pathgen: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
