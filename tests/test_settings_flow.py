"""Settings flow from the job, never back to the whole config (issue 13).

A rule's script takes its inputs, outputs, params (the rerun trigger) and wildcards from
Snakemake and passes them down as explicit arguments: it never re-reads ``snakemake.config``
(a setting read there is not in the params, so changing it reruns nothing). Library functions
take paths and their own section of the config, never the whole ``PathgenConfig``; only the
glue modules that turn the config into jobs or commands may (the CLI front doors, the
parse-time helpers of the rules, the chunk runner, the doctor/status tools)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "workflow_scripts").glob("*.py"))

# Glue: modules whose job is to read the whole config (relative to pathgen/).
GLUE_FILES = {"paths.py", "cli.py", "doctor.py", "workflow_env.py", "cohort.py"}
# pathgen/<area>/cli.py, pathgen/<area>/workflow.py, pathgen/<area>/chunk_stage.py
GLUE_NAMES = {"cli.py", "workflow.py", "chunk_stage.py"}
GLUE_DIRS = {"config", "runner"}


def _is_glue(rel: Path) -> bool:
    return (str(rel) in GLUE_FILES or rel.name in GLUE_NAMES or rel.parts[0] in GLUE_DIRS)


LIBRARY = sorted(p for p in (ROOT / "pathgen").rglob("*.py")
                 if not _is_glue(p.relative_to(ROOT / "pathgen")))


def _script_reads_config(tree: ast.AST) -> list[str]:
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "config" and isinstance(node.value, ast.Name) \
                and node.value.id in {"snakemake", "sm"}:
            bad.append(f"line {node.lineno}: {node.value.id}.config")
        if isinstance(node, ast.Name) and node.id == "validate_config":
            bad.append(f"line {node.lineno}: validate_config")
    return bad


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_take_settings_from_the_job(script):
    bad = _script_reads_config(ast.parse(script.read_text()))
    assert not bad, (f"{script.name} reads the whole workflow config ({'; '.join(bad)}): pass what "
                     "it needs as the rule's params/input/output and validate only that section")


def _whole_config_params(tree: ast.AST) -> list[str]:
    bad = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        a = node.args
        for arg in a.posonlyargs + a.args + a.kwonlyargs:
            ann = ast.unparse(arg.annotation) if arg.annotation is not None else ""
            if "PathgenConfig" in ann or arg.arg == "full_cfg":
                bad.append(f"{node.name}({arg.arg}) line {node.lineno}")
    return bad


@pytest.mark.parametrize("module", LIBRARY, ids=lambda p: str(p.relative_to(ROOT / "pathgen")))
def test_library_functions_take_sections_not_the_whole_config(module):
    bad = _whole_config_params(ast.parse(module.read_text()))
    assert not bad, (f"pathgen/{module.relative_to(ROOT / 'pathgen')} takes the whole PathgenConfig in "
                     f"{', '.join(bad)}: take the section and the resolved values it needs (or move "
                     "a parse-time helper into the area's workflow.py)")


def test_the_scan_catches_both_forms():
    """The checks can fail: a script reading sm.config and a library taking PathgenConfig."""
    assert _script_reads_config(ast.parse("cfg = validate_config(sm.config)\n"))
    assert _whole_config_params(ast.parse("def f(cfg: PathgenConfig, x): ...\n"))
    assert _whole_config_params(ast.parse("def f(x, full_cfg=None): ...\n"))
    assert not _whole_config_params(ast.parse("def f(cfg: SelectionConfig): ...\n"))
