"""How a run's config is put together: its layers, their merge, and where each value came from.

Lowest first (a later layer wins):

1. **built-in default**: the schema (``pathgen/config/*``), i.e. the real-data defaults (the
   PathGen-1.6M method where it defines one).
2. **demo overlay**: ``pathgen/data/demo.yaml``, the demo's small offline settings (tiny
   encoder, 128 µm patches, a tiny CLIP, the demo benchmarks). Only while the demo is the
   run's slide source: ``demo.enabled`` true (its default) and neither ``slides.dir`` nor
   ``slides.sample_sheet`` set, as the layers above it say.
3. **config.yaml**: the working directory's (the Snakefile's ``configfile:``; the CLI's
   default, which ``--config FILE`` replaces).
4. **--configfile FILE**: each file in order, over config.yaml (Snakemake and the CLI alike).
5. **--config KEY=VALUE** (Snakemake) / **--set KEY=VALUE** and the convenience flags (CLI).

Mappings merge key by key (as Snakemake's ``update_config``); anything else, lists
included, replaces. ``--set a.b=V`` replaces the value at ``a.b`` whole.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .base import ConfigError, format_validation_error

BUILTIN = "built-in default"
DEMO_OVERLAY = "demo overlay"
DEMO_OVERLAY_FILE = "demo.yaml"  # in pathgen/data/
CONFIG_YAML = "config.yaml"
SET = "--set"
SNAKEMAKE_CONFIG = "--config"


def configfile_source(path: str | Path) -> str:
    return f"--configfile {path}"


@dataclass(frozen=True)
class Layer:
    """One source of settings. ``data`` is nested; with ``dotted`` its keys are dotted names
    whose values replace what is there (the CLI's --set) instead of merging into it."""

    source: str
    data: Mapping[str, Any]
    path: str | None = None
    dotted: bool = False

    def describe(self) -> dict:
        out = {"source": self.source}
        if self.path is not None:
            out["path"] = self.path
        if self.source in (SET, SNAKEMAKE_CONFIG) or self.dotted:
            out["values"] = _plain(self.data)
        return out


def _plain(value: Any) -> Any:
    """Mappings (OrderedDict, immutables.Map) as dicts, recursively; the rest as is."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def read_yaml(path: str | Path, what: str = "config file",
              load: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """A YAML (or JSON) mapping from ``path``; ``load`` reads it instead (the Snakefile passes
    Snakemake's own reader, so both read a file alike)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{what} {path} does not exist")
    try:
        data = load(str(path)) if load is not None else yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{what} {path} is not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{what} {path} must hold a mapping at top level")
    return _plain(data)


def file_layer(path: str | Path, source: str | None = None,
               load: Callable[[str], Any] | None = None) -> Layer:
    return Layer(source or str(path), read_yaml(path, load=load), str(path))


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``a.b.c=value`` inside nested dicts (used for --set KEY=VALUE on the CLI)."""
    parts = key.split(".")
    cur = data
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
        if not isinstance(cur, dict):
            raise ConfigError(f"cannot set '{key}': '{part}' is not a section")
    cur[parts[-1]] = value


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``top`` over ``base`` (new dict): mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(_plain(base))
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(_plain(value))
    return out


@lru_cache(maxsize=1)
def _overlay_text() -> str:
    return resources.files("pathgen.data").joinpath(DEMO_OVERLAY_FILE).read_text()


def demo_overlay_path() -> str:
    return str(resources.files("pathgen.data").joinpath(DEMO_OVERLAY_FILE))


def demo_overlay() -> dict[str, Any]:
    """The demo overlay's settings (a fresh copy)."""
    return yaml.safe_load(_overlay_text()) or {}


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "no", "off", "0", "")
    return bool(value)


def demo_is_source(data: Mapping[str, Any]) -> bool:
    """The raw (merged) settings run the embedded demo: demo.enabled (default true) and no
    real slides named. The condition for the demo overlay (PathgenConfig.uses_demo, raw)."""
    demo = data.get("demo")
    enabled = demo.get("enabled", True) if isinstance(demo, Mapping) else True
    slides = data.get("slides")
    slides = slides if isinstance(slides, Mapping) else {}
    return _truthy(enabled) and slides.get("dir") is None and slides.get("sample_sheet") is None


def with_demo_overlay(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with the demo overlay merged beneath it when it runs the demo (what
    validate_config validates; e.g. the repo's config.yaml as one full demo config)."""
    return deep_merge(demo_overlay(), data) if demo_is_source(data) else _plain(data)


def merge_layers(layers: Iterable[Layer]) -> tuple[dict[str, Any], dict[tuple, str]]:
    """The layers merged, and the source of every value they set (path tuple -> source; a
    path owns everything below it)."""
    data: dict[str, Any] = {}
    owner: dict[tuple, str] = {}

    def drop(prefix: tuple) -> None:
        for p in [p for p in owner if p[:len(prefix)] == prefix]:
            del owner[p]

    def claim(prefix: tuple, value: Any, source: str) -> None:
        if isinstance(value, Mapping) and value:
            for k, v in value.items():
                claim(prefix + (str(k),), v, source)
        else:
            owner[prefix] = source

    def merge_into(base: dict, top: Mapping, prefix: tuple, source: str) -> None:
        for key, value in top.items():
            path = prefix + (str(key),)
            if isinstance(value, Mapping) and isinstance(base.get(key), dict):
                owner.pop(path, None)
                merge_into(base[key], value, path, source)
            else:
                drop(path)
                base[key] = copy.deepcopy(_plain(value))
                claim(path, value, source)

    for layer in layers:
        if layer.dotted:
            for key, value in layer.data.items():
                set_dotted(data, key, copy.deepcopy(_plain(value)))
                path = tuple(key.split("."))
                drop(path)
                for i in range(1, len(path)):
                    owner.pop(path[:i], None)
                claim(path, value, layer.source)
        else:
            merge_into(data, layer.data, (), layer.source)
    return data, owner


@dataclass
class Resolved:
    """A validated config with its layers and the source of each of its values."""

    config: Any  # PathgenConfig (imported lazily: this module sits below the package root)
    layers: list[dict] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    def source_of(self, key: str) -> str:
        """Source of a dotted key: its own, else the one of the section it is in."""
        if key in self.sources:
            return self.sources[key]
        below = {s for k, s in self.sources.items() if k.startswith(key + ".")}
        if len(below) == 1:
            return below.pop()
        if below:
            return "mixed: " + ", ".join(sorted(below))
        raise KeyError(key)

    def record(self, **info: Any) -> dict:
        """What the workflow stores under results/ (pathgen.runner.record)."""
        return {**info, "layers": self.layers,
                "config": self.config.model_dump(mode="json"), "sources": self.sources}


def _leaves(value: Any, prefix: tuple = ()) -> Iterable[tuple]:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from _leaves(v, prefix + (str(k),))
    else:
        yield prefix


def resolve(layers: Iterable[Layer], what: str = "config", demo: bool | None = None) -> Resolved:
    """Merge the layers over the built-ins (and the demo overlay when they run the demo, or
    as ``demo`` says), validate, and name each value's source."""
    from . import PathgenConfig
    from pydantic import ValidationError

    layers = list(layers)
    user, _ = merge_layers(layers)
    use_overlay = demo_is_source(user) if demo is None else demo
    if use_overlay:
        layers = [Layer(DEMO_OVERLAY, demo_overlay(), demo_overlay_path()), *layers]
    data, owner = merge_layers(layers)
    try:
        cfg = PathgenConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, PathgenConfig, what)) from None
    sources = {}
    for leaf in _leaves(cfg.model_dump(mode="json")):
        src = BUILTIN
        for i in range(len(leaf), 0, -1):
            if leaf[:i] in owner:
                src = owner[leaf[:i]]
                break
        sources[".".join(leaf)] = src
    described = [{"source": BUILTIN}] + [layer.describe() for layer in layers]
    return Resolved(cfg, described, sources)


def snakemake_layers(configfile: str | Path | None, configfiles: Iterable[str | Path],
                     config_args: Mapping[str, Any] | None, merged: Mapping[str, Any] | None = None,
                     load: Callable[[str], Any] | None = None) -> list[Layer]:
    """The layers of a ``snakemake`` run: the Snakefile's configfile (when present and not
    replaced), each --configfile, then --config. ``merged`` is Snakemake's own ``config``: when
    the layers do not add up to it (a case this function does not know), it is returned as
    one layer, so the run always uses exactly what Snakemake holds."""
    layers = []
    if configfile is not None and Path(configfile).exists():
        layers.append(file_layer(configfile, CONFIG_YAML if Path(configfile).name == CONFIG_YAML
                                 else str(configfile), load))
    for f in configfiles or ():  # Snakemake hands them absolute: name them as typed in cwd
        shown = Path(f).relative_to(Path.cwd()) if Path(f).is_relative_to(Path.cwd()) else f
        layers.append(file_layer(f, configfile_source(shown), load))
    if config_args:
        layers.append(Layer(SNAKEMAKE_CONFIG, _plain(config_args)))
    if merged is not None and merge_layers(layers)[0] != _plain(merged):
        return [Layer("workflow config", _plain(merged))]
    return layers
