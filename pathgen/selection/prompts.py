"""Morphology prompt files: parsing, cancer-type resolution per slide.

File format (YAML, pathgen's own; the shipped one is pathgen/prompts/morphology/tcga.yaml):
``{version: 1, cancer_types: {CODE: {name: str, aliases: [str], prompts: [str, ...]}}}``.
A ``generic`` entry is required: it serves slides with no or an unknown cancer type.
"""

from __future__ import annotations

import csv
import functools
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from ..config import ConfigError

log = logging.getLogger(__name__)

GENERIC = "generic"


def default_prompts_file() -> Path:
    return Path(str(resources.files("pathgen") / "prompts" / "morphology" / "tcga.yaml"))


@dataclass(frozen=True)
class CancerPrompts:
    code: str
    name: str
    aliases: tuple[str, ...]
    prompts: tuple[str, ...]


@dataclass(frozen=True)
class PromptBook:
    source: Path
    types: dict[str, CancerPrompts]

    def _index(self) -> dict[str, str]:
        idx: dict[str, str] = {}
        for code, cp in self.types.items():
            for key in (code, *cp.aliases):
                idx[_norm(key)] = code
        return idx

    def resolve(self, cancer_type: str | None, unknown: str = "generic") -> str:
        """Map a project code / alias (case-insensitive, 'TCGA-' optional) to an entry code."""
        if cancer_type is None or not str(cancer_type).strip():
            return GENERIC
        code = self._index().get(_norm(cancer_type))
        if code is not None:
            return code
        msg = (f"cancer type {cancer_type!r} has no prompts in {self.source}; known: "
               f"{', '.join(sorted(self.types))}. Add an entry (or an alias) to the prompts file, "
               "or set selection.unknown_cancer_type: generic")
        if unknown == "error":
            raise ConfigError(msg)
        log.warning("%s -- using the generic prompts", msg)
        return GENERIC

    def prompts_for(self, code: str, include_generic: bool = False) -> list[str]:
        out = list(self.types[code].prompts)
        if include_generic and code != GENERIC:
            out += [p for p in self.types[GENERIC].prompts if p not in out]
        return out


def _norm(s: str) -> str:
    s = str(s).strip().lower()
    return s[5:] if s.startswith("tcga-") else s


def load_prompt_book(path: str | Path | None = None) -> PromptBook:
    """Parse and validate a prompts file; errors name the file and the bad key."""
    path = Path(path) if path is not None else default_prompts_file()
    if not path.exists():
        raise ConfigError(f"prompts file {path} does not exist (selection.prompts_file)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"prompts file {path} is not valid YAML: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("cancer_types"), dict):
        raise ConfigError(f"prompts file {path} needs a top-level mapping 'cancer_types: "
                          "{CODE: {name, aliases, prompts}}'")
    types: dict[str, CancerPrompts] = {}
    seen: dict[str, str] = {}
    for code, entry in data["cancer_types"].items():
        where = f"{path}: cancer_types.{code}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a mapping with 'prompts' (and optional name, aliases)")
        unknown = set(entry) - {"name", "aliases", "prompts"}
        if unknown:
            raise ConfigError(f"{where} has unknown keys {sorted(unknown)}; allowed: name, aliases, prompts")
        prompts = entry.get("prompts")
        if not isinstance(prompts, list) or not prompts:
            raise ConfigError(f"{where}.prompts must be a non-empty list of sentences")
        clean = []
        for i, p in enumerate(prompts):
            if not isinstance(p, str) or not p.strip():
                raise ConfigError(f"{where}.prompts[{i}] must be a non-empty string, got {p!r}")
            clean.append(" ".join(p.split()))
        aliases = entry.get("aliases") or []
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise ConfigError(f"{where}.aliases must be a list of strings")
        for key in (str(code), *aliases):
            k = _norm(key)
            if k in seen and seen[k] != code:
                raise ConfigError(f"{where}: alias {key!r} is already used by {seen[k]!r}")
            seen[k] = str(code)
        types[str(code)] = CancerPrompts(str(code), str(entry.get("name") or code),
                                         tuple(aliases), tuple(clean))
    if GENERIC not in types:
        raise ConfigError(f"prompts file {path} needs a '{GENERIC}' entry (used for slides "
                          "without a known cancer type)")
    return PromptBook(path, types)


def sheet_cancer_types(sample_sheet: Path | None, column: str) -> dict[str, str]:
    """slide_id -> non-empty ``column`` value of the sample sheet ({} without sheet/column).
    Read once per (file, mtime): the rules ask it for every chunk at parse time."""
    if sample_sheet is None or not Path(sample_sheet).exists():
        return {}
    st = Path(sample_sheet).stat()
    return _read_sheet_column(str(Path(sample_sheet).resolve()), (st.st_mtime_ns, st.st_size), column)


@functools.lru_cache(maxsize=8)
def _read_sheet_column(path: str, _version: tuple, column: str) -> dict[str, str]:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if column not in (reader.fieldnames or []):
            return {}
        out: dict[str, str] = {}
        for row in reader:
            sid, value = (row.get("slide_id") or "").strip(), (row.get(column) or "").strip()
            if sid and value:
                out.setdefault(sid, value)  # the first row of a slide wins
        return out


def cancer_type_of(slide_id: str, sample_sheet: Path | None, column: str,
                   default: str | None) -> str | None:
    """Per-slide cancer type from the sample sheet column, else the configured default."""
    return sheet_cancer_types(sample_sheet, column).get(slide_id, default)
