"""The `pathgen` command: one subcommand per stage, each working on plain paths.

Stage modules register themselves through a ``register(subparsers)`` function; the list
below is the only place that names them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

import yaml

from . import __version__
from .config import ConfigError, PathgenConfig, load_config

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
    "pathgen.doctor",
    "pathgen.status_cli",
    "pathgen.recover",
]


def add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None,
                        help="YAML config (default: ./config.yaml when present, else built-ins)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="Override a config key, e.g. --set tiling.patch_size_um=128 (repeatable)")


def config_from_args(args: argparse.Namespace) -> PathgenConfig:
    overrides = {}
    for item in getattr(args, "overrides", []) or []:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        overrides[key] = yaml.safe_load(value)
    return load_config(getattr(args, "config", None), overrides)


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
    vc.set_defaults(func=_validate_config)
    return parser


def _validate_config(args) -> int:
    cfg = config_from_args(args)
    print(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    return 0


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
