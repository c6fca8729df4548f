"""One source of truth for output paths: the file names of each area in its
``pathgen/<area>/files.py`` (no config import) and the run's folders in pathgen/paths.py
(``Layout``, the resolver from the config).

A grep-style check over pathgen/**/*.py, rules/*.smk and the Snakefile: no file outside those
sources may build an output path itself, i.e. join a literal file name
(``x / "name.json"``), join a literal onto ``Path(...)``, write an f-string or a concatenation
ending in an output extension, or re-spell a file name that one of them defines.
Files that still do are listed in ALLOWLIST, each with what is left to move and why it is
not moved yet; an entry whose file is clean must be dropped (the list only shrinks).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# pathgen/paths.py and every area's files.py (pathgen/tiling/files.py, pathgen/mil/files.py, ...)
SOURCES_OF_TRUTH = ["pathgen/paths.py"] + sorted(p.relative_to(REPO).as_posix()
                                                 for p in (REPO / "pathgen").glob("*/files.py"))
SOURCE_MODULES = [importlib.import_module(s.removesuffix(".py").replace("/", ".")) for s in SOURCES_OF_TRUTH]
EXT = r"(?:h5|json|jsonl|csv|tsv|pt|png|jpg|html|md|geojson|parquet|svs|log)"
PATTERNS = {
    "joins a literal file name": re.compile(r"/\s*[rb]?['\"][^'\"\n]*\." + EXT + r"['\"]"),
    "joins a literal onto Path(...)": re.compile(r"\bPath\([^()\n]*\)\s*/\s*[rb]?['\"]"),
    "f-string file name": re.compile(r"\bf['\"][^'\"\n]*\." + EXT + r"['\"]"),
    "concatenated file name": re.compile(r"\+\s*['\"][^'\"\n]*\." + EXT + r"['\"]"),
}
# File names the sources define (those with an extension: bare words are too common).
CONSTANT_NAMES = sorted({v for m in SOURCE_MODULES for k, v in vars(m).items()
                         if k.isupper() and isinstance(v, str) and "." in v})
PATTERNS["re-spells a file-name constant"] = re.compile(
    r"['\"](?:" + "|".join(map(re.escape, CONSTANT_NAMES)) + r")['\"]")

# Files that still build paths themselves. Each value says what is left and why it waits.
ALLOWLIST: dict[str, str] = {}


def _scanned() -> list[Path]:
    files = sorted((REPO / "pathgen").rglob("*.py")) + sorted((REPO / "rules").glob("*.smk"))
    return files + [REPO / "Snakefile"]


def _hits(path: Path, root: Path = REPO) -> list[str]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        code = line.lstrip()
        if code.startswith("#"):
            continue
        for why, pat in PATTERNS.items():
            if pat.search(line):
                out.append(f"{path.relative_to(root)}:{n}: {why}: {code.strip()[:100]}")
                break
    return out


def test_paths_are_built_only_in_the_sources_of_truth():
    found = []
    for f in _scanned():
        rel = f.relative_to(REPO).as_posix()
        if rel in SOURCES_OF_TRUTH or rel in ALLOWLIST:
            continue
        found += _hits(f)
    assert not found, ("output paths built outside pathgen/paths.py and pathgen/<area>/files.py (add "
                       "a file-name constant or a function to the area's files.py, or a Layout "
                       "method for a folder the config decides, and use it):\n" + "\n".join(found))


def test_the_sources_are_the_area_modules():
    """The area modules are found (a renamed or moved one would silently leave the scan) and
    their names reach the re-spelling check."""
    areas = {Path(s).parent.name for s in SOURCES_OF_TRUTH[1:]}
    assert {"tiling", "features", "selection", "captioning", "dataset", "training", "zeroshot",
            "mil", "instruct", "agents", "report", "demo"} <= areas
    assert {"metrics.json", "open_clip.csv", "classes.json", ".rejects.jsonl"} <= set(CONSTANT_NAMES)


def test_allowlist_only_shrinks():
    """An allowlisted file that no longer builds paths must leave the list."""
    stale = [rel for rel in ALLOWLIST if not (REPO / rel).exists() or not _hits(REPO / rel)]
    assert not stale, f"remove from ALLOWLIST in {Path(__file__).name} (now clean or gone): {stale}"
    assert all(reason.startswith("to move: ") for reason in ALLOWLIST.values())


def test_the_scan_sees_each_pattern(tmp_path):
    """The patterns catch the forms they are meant to (guards against a silently dead regex)."""
    sample = tmp_path / "sample.py"
    sample.write_text('a = d / "x.json"\nb = Path(p) / "sub"\nc = f"{s}.h5"\n'
                      'e = stem + ".rejects.jsonl"\nf = {"k": "open_clip.csv"}\n# d / "ok.json"\n'
                      'g = run / "metrics.json"\nh = ("fold_assignment.csv",)\n')
    assert [h.split(":")[1] for h in _hits(sample, tmp_path)] == ["1", "2", "3", "4", "5", "7", "8"]
