"""The conda envs (envs/*.yaml) agree with pyproject.toml and cover what each rule imports.

Conda channels are not reachable in CI, so the envs are checked statically: they parse, pin
exactly pyproject's versions, every rule's `conda:` points at one of them, and every
third-party module that a rule's script can import (followed through pathgen's own modules)
is provided by a package listed in that env.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
ENVS = sorted((REPO / "envs").glob("*.yaml"))
RULE_FILES = sorted((REPO / "rules").glob("*.smk"))


def norm(name: str) -> str:
    """PEP 503 name, extras dropped: 'open_clip_torch[training]' -> 'open-clip-torch'."""
    return re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()


@lru_cache
def pyproject_pins() -> dict[str, str]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    pins = {}
    for dep in data["project"]["dependencies"]:
        name, sep, version = dep.partition("==")
        assert sep, f"pyproject dependency {dep!r} is not pinned with =="
        pins[norm(name)] = version.strip()
    return pins


@lru_cache
def _packages_distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def installed_closure(requirements: list[str]) -> set[str]:
    return set(_closure(tuple(requirements)))


@lru_cache
def _closure(requirements: tuple[str, ...]) -> frozenset[str]:
    """Normalised names of the packages pip would install for ``requirements`` (with their
    dependencies, extras honoured), read from the project venv's installed metadata."""
    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = norm(req.name)
        key = name + "[" + ",".join(sorted(req.extras)) + "]"
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = importlib.metadata.distribution(req.name)
        except importlib.metadata.PackageNotFoundError:
            continue
        for line in dist.requires or []:
            sub = Requirement(line)
            if sub.marker is None:
                todo.append(sub)
                continue
            envs = [{"extra": e} for e in req.extras] or [{"extra": ""}]
            if any(sub.marker.evaluate(e) for e in envs):
                todo.append(sub)
    return frozenset(k.split("[")[0] for k in seen)


def env_requirements(path: Path) -> list[str]:
    data = yaml.safe_load(path.read_text())
    return next((d["pip"] for d in data["dependencies"] if isinstance(d, dict) and "pip" in d), [])


def env_pip(path: Path) -> dict[str, str]:
    data = yaml.safe_load(path.read_text())
    pip = next((d["pip"] for d in data["dependencies"] if isinstance(d, dict) and "pip" in d), [])
    out = {}
    for entry in pip:
        name, sep, version = entry.partition("==")
        assert sep, f"{path.name}: pip entry {entry!r} is not pinned with =="
        out[norm(name)] = version.strip()
    return out


def parse_rules(path: Path) -> dict[str, dict[str, str]]:
    """rule name -> {directive: first string value} for `conda:` and `script:` (both layouts)."""
    rules: dict[str, dict[str, str]] = {}
    current = None
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"\s*(?:rule|checkpoint)\s+(\w+)\s*:", line)
        if m:
            current = rules.setdefault(m.group(1), {})
            continue
        m = re.search(r"chunk_params\(\"(\w+)\"\)|^\s*stage=\"(\w+)\"", line)
        if m and current is not None:  # a chunk rule: its stage's module runs in its script
            current["stage"] = m.group(1) or m.group(2)
        m = re.match(r"\s*(conda|script)\s*:\s*(.*)$", line)
        if m and current is not None:
            rest = m.group(2).strip() or (lines[i + 1].strip() if i + 1 < len(lines) else "")
            s = re.match(r"""^(["'])(.+?)\1""", rest)
            if s:
                current[m.group(1)] = s.group(2)
    return rules


def all_rules() -> list[tuple[Path, str, dict[str, str]]]:
    return [(f, name, d) for f in RULE_FILES for name, d in parse_rules(f).items()]


# -- import tracing ---------------------------------------------------------------------------
class _Imports(ast.NodeVisitor):
    """Collect imports, skipping `if TYPE_CHECKING:` and `try: ... except ImportError` (optional)."""

    def __init__(self):
        self.found: list[tuple[str, int, str | None]] = []  # (module, level, imported name)

    def visit_If(self, node):
        test = ast.unparse(node.test)
        if "TYPE_CHECKING" in test:
            for n in node.orelse:
                self.visit(n)
            return
        self.generic_visit(node)

    def visit_Try(self, node):
        names = {ast.unparse(h.type) for h in node.handlers if h.type is not None}
        optional = any("ImportError" in n or "ModuleNotFoundError" in n for n in names)
        if not optional:
            self.generic_visit(node)
        else:
            for n in node.handlers + node.orelse + node.finalbody:
                self.visit(n)

    def visit_Import(self, node):
        for a in node.names:
            self.found.append((a.name, 0, None))

    def visit_ImportFrom(self, node):
        for a in node.names:
            self.found.append((node.module or "", node.level, a.name))


def _module_file(mod: str) -> Path | None:
    base = REPO.joinpath(*mod.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def third_party_imports(script: Path) -> dict[str, str]:
    """Top-level third-party module -> the first file that imports it (pathgen followed)."""
    out: dict[str, str] = {}
    seen: set[Path] = set()
    todo = [script]
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        pkg = ".".join(f.relative_to(REPO).with_suffix("").parts)
        if f.name == "__init__.py":
            pkg = pkg.rsplit(".", 1)[0]
        else:
            pkg = pkg.rsplit(".", 1)[0] if "." in pkg else ""
        v = _Imports()
        v.visit(ast.parse(f.read_text(), str(f)))
        for mod, level, name in v.found:
            if level:
                base = pkg.split(".")[: len(pkg.split(".")) - (level - 1)]
                mod = ".".join(base + ([mod] if mod else []))
            top = mod.split(".")[0]
            if top == "pathgen":
                parts = mod.split(".")
                for k in range(1, len(parts) + 1):  # parent packages run their __init__
                    p = _module_file(".".join(parts[:k]))
                    if p:
                        todo.append(p)
                if name and (sub := _module_file(f"{mod}.{name}")):
                    todo.append(sub)
            elif top and top not in sys.stdlib_module_names and top not in ("__future__", "snakemake"):
                out.setdefault(top, str(f.relative_to(REPO)))
    return out


# -- tests ------------------------------------------------------------------------------------
def test_env_files_exist():
    assert {p.stem for p in ENVS} >= {"wsi", "torch", "llm", "report"}


@pytest.mark.parametrize("env", ENVS, ids=lambda p: p.name)
def test_env_parses_and_matches_pyproject(env):
    data = yaml.safe_load(env.read_text())
    assert data["name"] == f"pathgen-{env.stem}"
    assert "conda-forge" in data["channels"]
    conda = [d for d in data["dependencies"] if isinstance(d, str)]
    assert any(re.fullmatch(r"python=3\.\d+", d) for d in conda), f"{env.name}: pin python=3.X"
    pip = env_pip(env)
    assert pip, f"{env.name}: no pip packages"
    pins = pyproject_pins()
    for name, version in pip.items():
        assert name in pins, f"{env.name}: {name} is not a pyproject.toml dependency"
        assert version == pins[name], f"{env.name}: {name}=={version} but pyproject pins {pins[name]}"


def test_rule_parser_reads_both_layouts(tmp_path):
    smk = tmp_path / "x.smk"
    smk.write_text('rule a:\n    conda:\n        "../envs/wsi.yaml"\n    script: "../s.py"\n'
                   'rule b:\n    conda: "../envs/nope.yaml"\n')
    assert parse_rules(smk) == {"a": {"conda": "../envs/wsi.yaml", "script": "../s.py"},
                                "b": {"conda": "../envs/nope.yaml"}}


def test_every_conda_directive_points_at_an_env():
    rules = [(f, n, d) for f, n, d in all_rules() if "conda" in d]
    for f, name, d in rules:
        target = (f.parent / d["conda"]).resolve()
        assert target.is_file(), f"{f.name}: rule {name} uses conda env {d['conda']} which does not exist"
        assert target.parent == REPO / "envs", f"{f.name}: rule {name}: envs live in envs/"


def test_closure_includes_transitive_and_extras():
    got = installed_closure(["open_clip_torch[training]==3.3.0"])
    assert {"open-clip-torch", "torch", "huggingface-hub"} <= got
    assert "h5py" not in installed_closure(["pyyaml==6.0.4"])


def test_import_tracer_follows_pathgen(tmp_path):
    found = third_party_imports(REPO / "pathgen" / "config" / "__init__.py")
    assert "pydantic" in found and "yaml" in found
    assert "os" not in found and "pathgen" not in found


@lru_cache
def _third_party_cached(script: Path) -> dict[str, str]:
    return third_party_imports(script)


@pytest.mark.parametrize("rule", [(f, n, d) for f, n, d in all_rules() if {"conda", "script"} <= set(d)],
                         ids=lambda r: r[1])
def test_env_covers_rule_imports(rule):
    f, name, d = rule
    script = (f.parent / d["script"]).resolve()
    env = (f.parent / d["conda"]).resolve()
    provided = installed_closure(env_requirements(env))
    dists = _packages_distributions()
    missing = []
    imported = dict(_third_party_cached(script))
    if "stage" in d:  # workflow_scripts/chunk.py imports the rule's stage module by name
        from pathgen.runner.stage import STAGE_MODULES

        stage_file = _module_file(STAGE_MODULES[d["stage"]])
        imported = {**_third_party_cached(stage_file), **imported}
    for mod, where in sorted(imported.items()):
        owners = {norm(x) for x in dists.get(mod, [])}
        if not owners:
            continue  # not installed in the project venv either: an optional extra
        if not owners & provided:
            missing.append(f"{mod} (package {'/'.join(sorted(owners))}, imported in {where})")
    assert not missing, (f"rule {name} runs in {env.name} but can import modules it lacks: "
                         + "; ".join(missing))
