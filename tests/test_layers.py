"""The package's layers and import graph (issue 17), read from the source (AST), never by
importing it.

Layers, lowest first; a module imports only from its own layer or below:

- **config** (``pathgen/config/``): the settings schema. Imports nothing else of pathgen.
- **library**: everything not named below (``pathgen/<area>/*.py``, ``atomic``, ``logs``,
  ``slide_tables``, ...): takes paths and config sections. The areas' file names
  (``pathgen/<area>/files.py``) are leaves too: they import only other areas' ``files``.
- **glue**: turns the whole config into folders, jobs and params: ``pathgen/paths.py``
  (``Layout``), ``cohort.py`` (the run's slides), ``workflow_env.py``, every ``<area>/workflow.py`` and
  ``<area>/chunk_stage.py``, the chunk runner ``pathgen/runner/``.
- **CLI**: ``pathgen/cli.py`` and the front doors it registers, i.e. every ``<area>/cli.py``
  and every module with a top-level ``register(subparsers)`` (``doctor``, ``runner/status``,
  ``runner/recover``).

Imports are every ``import``/``from ... import`` of a pathgen module in a module, at any depth
(a function-level import is still a dependency; keeping it lazy only delays it).

The import graph has no cycles. Its nodes: ``pathgen.config``, ``pathgen.runner`` and each
area's library (``pathgen.tiling`` = its modules other than glue and CLI) are one node each; a
top-level module, and an area's glue or CLI module (``pathgen.tiling.cli``), is a node of its
own (they sit above ``pathgen.paths``, which sits above the areas' files).

PENDING lists the imports that still break a rule because the module is being rewritten
elsewhere; each says what is left to do, and an entry that no longer exists must go.

The test-support package ``pathgen_testkit/`` (mock and stand-in servers, synthetic data, file
makers, workspaces, the fake SLURM: used by tests/ and bench/) is in no layer: the product
never imports it, at any depth, nor loads it by name (``importlib.import_module``,
``__import__``, ``python -m``).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("config", "library", "glue", "cli")
GLUE_MODULES = {"paths", "cohort", "workflow_env"}       # pathgen/<name>.py
GLUE_AREA_MODULES = {"workflow", "chunk_stage"}          # pathgen/<area>/<name>.py
GLUE_PACKAGES = {"runner"}                               # pathgen/<package>/**
ONE_NODE_PACKAGES = {"config", "runner"}                 # one layer throughout: one graph node
TESTKIT = "pathgen_testkit"                              # tests' and benches' support: no layer

# (importer, imported) -> what is left to do. Only shrinks.
PENDING: dict[tuple[str, str], str] = {}


@dataclass
class Tree:
    """The modules under ``root/package`` and the package modules each one imports."""

    root: Path
    package: str = "pathgen"
    modules: dict[str, Path] = field(default_factory=dict)
    packages: set[str] = field(default_factory=set)
    front_doors: set[str] = field(default_factory=set)
    # importer -> imported -> (line, function-level?)
    imports: dict[str, dict[str, tuple[int, bool]]] = field(default_factory=dict)

    @classmethod
    def read(cls, root: Path, package: str = "pathgen") -> Tree:
        tree = cls(Path(root), package)
        for path in sorted((tree.root / package).rglob("*.py")):
            parts = list(path.relative_to(tree.root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
                tree.packages.add(".".join(parts))
            tree.modules[".".join(parts)] = path
        for name, path in tree.modules.items():
            syntax = ast.parse(path.read_text(encoding="utf-8"), str(path))
            if any(isinstance(n, ast.FunctionDef) and n.name == "register" for n in syntax.body):
                tree.front_doors.add(name)
            tree.imports[name] = {}
            tree._collect(name, syntax, in_function=False)
        return tree

    def _collect(self, name: str, node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            lazy = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for target in self._targets(name, child):
                    self.imports[name].setdefault(target, (child.lineno, lazy))
            self._collect(name, child, lazy)

    def _targets(self, name: str, node: ast.Import | ast.ImportFrom) -> list[str]:
        if isinstance(node, ast.Import):
            found = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                here = name.split(".") if name in self.packages else name.split(".")[:-1]
                parent = here[:len(here) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            # `from pkg import sub` imports the submodule pkg.sub when there is one
            found = [f"{base}.{a.name}" if f"{base}.{a.name}" in self.modules else base for a in node.names]
        out = []
        for target in found:
            if target.split(".")[0] != self.package:
                continue
            while target not in self.modules and "." in target:  # an attribute, or a module gone
                target = target.rsplit(".", 1)[0]
            if target != name:
                out.append(target)
        return out

    def rel(self, name: str) -> str:
        return self.modules[name].relative_to(self.root).as_posix()

    def lines(self, importer: str, imported: str) -> str:
        line, lazy = self.imports[importer][imported]
        return f"{self.rel(importer)}:{line}{' (function-level)' if lazy else ''}"

    def function_level(self) -> list[tuple[str, str]]:
        return [(a, b) for a, targets in self.imports.items() for b, (_, lazy) in targets.items() if lazy]


def layer_of(tree: Tree, name: str) -> str:
    parts = name.split(".")[1:]
    if not parts:
        return "library"  # the package itself (__version__)
    if parts[0] == "config":
        return "config"
    if name == f"{tree.package}.cli" or parts[-1] == "cli" or name in tree.front_doors:
        return "cli"
    if (len(parts) == 1 and parts[0] in GLUE_MODULES) or parts[0] in GLUE_PACKAGES \
            or (len(parts) > 1 and parts[-1] in GLUE_AREA_MODULES):
        return "glue"
    return "library"


def node_of(tree: Tree, name: str) -> str:
    """The import-graph node a module belongs to (module docstring)."""
    parts = name.split(".")
    if len(parts) <= 2 or parts[1] in ONE_NODE_PACKAGES:
        return ".".join(parts[:2])
    return name if layer_of(tree, name) in ("glue", "cli") else ".".join(parts[:2])


def edges(tree: Tree, pending=PENDING):
    """(importer, imported) of every package import but the pending ones and the package root."""
    for a, targets in tree.imports.items():
        for b in targets:
            if b != tree.package and (a, b) not in pending:
                yield a, b


def config_violations(tree: Tree, pending=PENDING) -> list[str]:
    return [f"{a} imports {b} ({tree.lines(a, b)})" for a, b in edges(tree, pending)
            if layer_of(tree, a) == "config" and layer_of(tree, b) != "config"]


def layer_violations(tree: Tree, pending=PENDING) -> list[str]:
    out = []
    for a, b in edges(tree, pending):
        la, lb = layer_of(tree, a), layer_of(tree, b)
        if LAYERS.index(lb) > LAYERS.index(la):
            out.append(f"{a} ({la}) imports {b} ({lb}): {tree.lines(a, b)}")
    return out


def files_module_violations(tree: Tree, pending=PENDING) -> list[str]:
    """An area's files.py names files: it imports nothing of pathgen but other files modules."""
    return [f"{a} imports {b} ({tree.lines(a, b)})" for a, b in edges(tree, pending)
            if a.endswith(".files") and not b.endswith(".files")]


def find_cycle(tree: Tree, pending=PENDING) -> list[str]:
    """One cycle of the node graph as text (node, and the import that leads on), or []."""
    graph: dict[str, dict[str, tuple[str, str]]] = {}
    for a, b in edges(tree, pending):
        na, nb = node_of(tree, a), node_of(tree, b)
        if na != nb:
            graph.setdefault(na, {}).setdefault(nb, (a, b))
    state: dict[str, int] = {}  # 1 = on the path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return [f"{n} -> {m}: {tree.lines(*graph[n][m])}" for n, m in zip(cycle, cycle[1:])]
    return []


def uses_of(modules: dict[str, Path], root: Path, other: str) -> list[str]:
    """Every import of the top-level package ``other`` in ``modules`` (name -> file; any depth),
    and every string constant naming it as a module (``importlib.import_module("x.y")``,
    ``__import__``, ``[sys.executable, "-m", "x.y"]``), as "module uses x.y (file:line)"."""
    named = re.compile(rf"^{re.escape(other)}(\.\w+)*$")
    out = []
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                found = [node.module or ""]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                found = [node.value]
            else:
                continue
            out += [f"{name} uses {t} ({path.relative_to(root).as_posix()}:{node.lineno})"
                    for t in found if named.match(t)]
    return sorted(out)


TREE = Tree.read(ROOT)


def test_config_imports_nothing_else_of_pathgen():
    bad = config_violations(TREE)
    assert not bad, ("pathgen/config must be a leaf (move what it needs into pathgen/config, or "
                     "make the dependency go the other way):\n" + "\n".join(bad))


def test_layers_only_import_downwards():
    bad = layer_violations(TREE)
    assert not bad, ("layers are config < library < glue < CLI; these import upwards (library: "
                     "take paths/sections or import the area's files.py; glue: do not import a "
                     "front door):\n" + "\n".join(bad))


def test_area_file_names_import_no_config():
    assert any(name.endswith(".files") for name in TREE.modules)
    bad = files_module_violations(TREE)
    assert not bad, "pathgen/<area>/files.py may import only other files modules:\n" + "\n".join(bad)


def test_import_graph_has_no_cycles():
    cycle = find_cycle(TREE)
    assert not cycle, "import cycle between pathgen packages/modules:\n" + "\n".join(cycle)


def test_the_product_never_uses_its_test_support():
    """Neither pathgen/ nor the rules' scripts import pathgen_testkit or run it by name; the
    Snakefile and rules do not name it."""
    assert (ROOT / TESTKIT / "__init__.py").is_file()
    scripts = {f"workflow_scripts.{p.stem}": p for p in sorted((ROOT / "workflow_scripts").glob("*.py"))}
    bad = uses_of({**TREE.modules, **scripts}, ROOT, TESTKIT)
    bad += [f"{p.relative_to(ROOT)} names {TESTKIT}" for p in [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]
            if TESTKIT in p.read_text(encoding="utf-8")]
    assert not bad, (f"{TESTKIT} is test support (tests/, bench/), not part of pathgen: move what the "
                     "product needs into pathgen instead:\n" + "\n".join(bad))


def test_pending_only_shrinks():
    """Every pending import still exists and still breaks a rule (else drop it)."""
    stale = [pair for pair in PENDING if pair[1] not in TREE.imports.get(pair[0], {})]
    assert not stale, f"remove from PENDING in {Path(__file__).name} (gone): {stale}"
    assert all(reason.startswith("to move: ") for reason in PENDING.values())


def test_the_checks_fail_on_a_synthetic_violation(tmp_path):
    """A throwaway package with each violation: every check reports it (with file and line)."""
    files = {
        "__init__.py": "",
        "cli.py": "def register(sub):\n    pass\n",
        "paths.py": "from .config import Cfg\nfrom .lib import files\n",
        "config/__init__.py": "class Cfg:\n    pass\n",
        "config/agents.py": "def f():\n    from ..paths import Layout\n",        # config -> glue
        "lib/__init__.py": "",
        "lib/files.py": "from ..config import Cfg\n",                            # files -> config
        "lib/run.py": "def g():\n    from ..paths import Layout\n",             # library -> glue
        "lib/workflow.py": "from ..cli import register\n",                      # glue -> CLI
        "other/__init__.py": "from ..lib import run\n",                         # lib <-> other
        "other/mod.py": "",
        "other/kit_user.py": "def h():\n    import fake_kit.servers\n    return ['-m', 'fake_kit.stub']\n",
    }
    files["lib/util.py"] = "from ..other import mod\n"
    for rel, text in files.items():
        (tmp_path / "fake" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "fake" / rel).write_text(text)
    tree = Tree.read(tmp_path, "fake")
    assert layer_of(tree, "fake.lib.workflow") == "glue" and layer_of(tree, "fake.cli") == "cli"
    assert config_violations(tree, {}) == ["fake.config.agents imports fake.paths "
                                           "(fake/config/agents.py:2 (function-level))"]
    assert sorted(layer_violations(tree, {})) == [
        "fake.config.agents (config) imports fake.paths (glue): fake/config/agents.py:2 (function-level)",
        "fake.lib.run (library) imports fake.paths (glue): fake/lib/run.py:2 (function-level)",
        "fake.lib.workflow (glue) imports fake.cli (cli): fake/lib/workflow.py:1"]
    assert files_module_violations(tree, {}) == ["fake.lib.files imports fake.config (fake/lib/files.py:1)"]
    assert find_cycle(tree, {})  # config -> paths -> config, among others
    quiet = {("fake.config.agents", "fake.paths"): "to move: x", ("fake.lib.files", "fake.config"): "to move: x"}
    cycle = find_cycle(tree, quiet)
    assert [c.split(":")[0] for c in cycle] == ["fake.lib -> fake.other", "fake.other -> fake.lib"]
    assert cycle[0].endswith("fake/lib/util.py:1") and cycle[1].endswith("fake/other/__init__.py:1")
    # a pending entry silences exactly its import
    assert not config_violations(tree, {("fake.config.agents", "fake.paths"): "to move: x"})
    # the test-support package: imported (function-level) and named as a module to run
    assert uses_of(tree.modules, tmp_path, "fake_kit") == ["fake.other.kit_user uses fake_kit.servers (fake/other/kit_user.py:2)",
                                         "fake.other.kit_user uses fake_kit.stub (fake/other/kit_user.py:3)"]
    assert uses_of(tree.modules, tmp_path, "fake_kit_not") == []
