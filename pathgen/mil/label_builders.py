"""Labels tables for the preset WSI tasks, built from the datasets' own file names and tables.

Each builder returns a CLAM dataset table `case_id, slide_id, label` (+ `part`: the official
split of the slide, `train`/`val`/`test` or empty, and the raw class: `subtype`/`project`).
Slide ids are file stems (what pathgen/TRIDENT name the feature files after).

- CAMELYON16: `normal_NNN` / `tumor_NNN` (training, label in the name), `test_NNN` (official
  test set; label from the official `reference.csv`: image, class Normal/Tumor, [type,
  size], with or without a header row). One slide per patient.
- BRACS: `BRACS_<id>_<subtype>_<n>` (subtype in the name) or `BRACS_<id>` under a
  `Type_<subtype>` / `<k>_<subtype>` folder; 7 subtypes -> 3 classes by the preset's
  label map; patient = `BRACS_<id>`; an ancestor folder train/val/test is the official split.
- TCGA: barcode `TCGA-TSS-PPPP-SSV-PPS-<type><n>[.<uuid>]`; patient = first 12 characters;
  class = GDC `project_id` (e.g. TCGA-LUAD) from a manifest: GDC sample sheet (`File Name`,
  `Case ID`, `Project ID`) or clinical table (`case_submitter_id`, `project_id`).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd

from ..config import ConfigError
from .labels import _SLIDE_EXTS, _slide_stem, read_table

log = logging.getLogger(__name__)
COLUMNS = ["case_id", "slide_id", "label", "part"]


def scan_slides(slides_dir: Path) -> dict[str, Path]:
    """Slide stem -> file, for slide files anywhere under `slides_dir` (sorted, first wins)."""
    slides_dir = Path(slides_dir)
    if not slides_dir.is_dir():
        raise ConfigError(f"slides folder {slides_dir} does not exist; pass --slides-dir")
    out: dict[str, Path] = {}
    for p in sorted(slides_dir.rglob("*")):
        if p.is_file() and p.name.lower().endswith(_SLIDE_EXTS + (".ome.tif", ".ome.tiff")):
            out.setdefault(_slide_stem(p.name), p)
    if not out:
        raise ConfigError(f"no slide files ({', '.join(_SLIDE_EXTS[:5])}, ...) under {slides_dir}")
    return out


def _skipped(kind: str, names: list[str], why: str) -> None:
    if names:
        log.warning("%s: %d file(s) skipped (%s): %s", kind, len(names), why, ", ".join(sorted(names)[:5]))


def _read_any(path: Path) -> pd.DataFrame:
    return read_table(path, fix="check the path given to the preset")


# -- CAMELYON16 -------------------------------------------------------------------------------
_C16 = re.compile(r"^(normal|tumor|test)_(\d{3})$", re.IGNORECASE)
C16_REFERENCE = "reference.csv"  # name of the official test-label file in the release


def read_c16_reference(path: Path) -> dict[str, str]:
    """Official `reference.csv` -> test slide stem -> normal/tumor."""
    df = pd.read_csv(path, header=None, dtype=str, keep_default_na=False)
    if len(df) and df.iloc[0, 0].strip().lower() in ("image", "image_id", "slide", "slide_id"):
        df = df.iloc[1:]
    if df.shape[1] < 2:
        raise ConfigError(f"{path}: expected columns image,class (Normal/Tumor); found {df.shape[1]} column(s)")
    out = {}
    for image, cls in zip(df.iloc[:, 0], df.iloc[:, 1]):
        c = cls.strip().lower()
        if c not in ("normal", "tumor"):
            raise ConfigError(f"{path}: class {cls!r} of {image!r} is neither Normal nor Tumor")
        out[_slide_stem(image)] = c
    return out


def _find_reference(slides_dir: Path, reference: Path | None) -> Path:
    if reference is not None:
        if not Path(reference).is_file():
            raise ConfigError(f"CAMELYON16 reference {reference} does not exist; fix --reference")
        return Path(reference)
    found = sorted(Path(slides_dir).rglob(C16_REFERENCE))
    if not found:
        raise ConfigError(f"CAMELYON16 test slides need the official {C16_REFERENCE} (test labels); none "
                          f"under {slides_dir}: pass --reference /path/to/{C16_REFERENCE}")
    return found[0]


def camelyon16_table(slides_dir: Path, preset: dict, reference: Path | None = None) -> pd.DataFrame:
    slides = scan_slides(slides_dir)
    rows, other = [], []
    for stem in slides:
        m = _C16.match(stem)
        if not m:
            other.append(stem)
            continue
        kind = m.group(1).lower()
        rows.append({"slide_id": stem, "kind": kind})
    _skipped("CAMELYON16", other, "not normal_NNN/tumor_NNN/test_NNN")
    tests = [r for r in rows if r["kind"] == "test"]
    ref = read_c16_reference(_find_reference(slides_dir, reference)) if tests else {}
    missing = sorted(r["slide_id"] for r in tests if r["slide_id"] not in ref)
    if missing:
        raise ConfigError(f"CAMELYON16: test slide(s) {missing[:5]} have no row in the reference table; "
                          "use the official reference.csv (all 130 test slides)")
    out = [{"case_id": r["slide_id"], "slide_id": r["slide_id"],
            "label": ref[r["slide_id"]] if r["kind"] == "test" else r["kind"],
            "part": "test" if r["kind"] == "test" else "train"} for r in rows]
    return _finish(out, "CAMELYON16", slides_dir)


# -- BRACS ------------------------------------------------------------------------------------
_BRACS = re.compile(r"^(BRACS_\d+)(?:_([A-Z]+)_(\d+))?$")
_BRACS_DIR = re.compile(r"^(?:type_|\d+_)([a-z]+)$", re.IGNORECASE)
_PARTS = {"train": "train", "training": "train", "val": "val", "validation": "val", "test": "test",
          "testing": "test"}


def _bracs_folder_info(path: Path, root: Path, subtypes: set[str]) -> tuple[str | None, str]:
    sub, part = None, ""
    for d in path.relative_to(root).parts[:-1]:
        m = _BRACS_DIR.match(d)
        if m and m.group(1).upper() in subtypes:
            sub = m.group(1).upper()
        part = _PARTS.get(d.lower(), part)
    return sub, part


def bracs_table(slides_dir: Path, preset: dict) -> pd.DataFrame:
    label_map = preset["label_map"]
    slides = scan_slides(slides_dir)
    rows, other = [], []
    for stem, path in slides.items():
        m = _BRACS.match(stem)
        folder_sub, part = _bracs_folder_info(path, Path(slides_dir), set(label_map))
        sub = m.group(2) if m and m.group(2) else folder_sub
        if not m or sub not in label_map:
            other.append(stem)
            continue
        rows.append({"case_id": m.group(1), "slide_id": stem, "label": label_map[sub], "part": part,
                     "subtype": sub})
    _skipped("BRACS", other, f"not BRACS_<id>_<subtype>_<n> with a subtype in {sorted(label_map)}, "
                             "nor under a Type_<subtype> folder")
    parts = {r["part"] for r in rows}
    if len(parts) > 1 and "" in parts:
        raise ConfigError(f"BRACS under {slides_dir}: some slides lie in train/val/test folders and some "
                          "do not; keep the official folder layout for all or none")
    return _finish(rows, "BRACS", slides_dir)


# -- TCGA -------------------------------------------------------------------------------------
_TCGA = re.compile(r"^(TCGA-[A-Z0-9]{2}-[A-Z0-9]{4})-(\d{2})[A-Z]-\d{2}-([A-Z]{2})\d+"
                   r"(?:\.[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$",
                   re.IGNORECASE)
_FILE_COLS = ("file_name", "filename", "file")
_CASE_COLS = ("case_submitter_id", "case_id", "submitter_id", "bcr_patient_barcode", "patient")
_PROJECT_COLS = ("project_id", "project")


def _col(df: pd.DataFrame, names: tuple[str, ...]) -> str | None:
    norm = {c.strip().lower().replace(" ", "_").replace(".", "_"): c for c in df.columns}
    return next((norm[n] for n in names if n in norm), None)


def read_tcga_manifest(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """GDC sample sheet / clinical table -> (slide stem -> project, patient -> project)."""
    df = _read_any(path)
    proj = _col(df, _PROJECT_COLS)
    fcol, ccol = _col(df, _FILE_COLS), _col(df, _CASE_COLS)
    if proj is None or (fcol is None and ccol is None):
        raise ConfigError(f"{path}: a TCGA manifest needs a project column ({'/'.join(_PROJECT_COLS)}) and a "
                          f"file ({'/'.join(_FILE_COLS)}) or case ({'/'.join(_CASE_COLS)}) column "
                          f"(GDC sample sheet or clinical.tsv); found {list(df.columns)}")
    by_file = {_slide_stem(f): p.strip() for f, p in zip(df[fcol], df[proj]) if f.strip()} if fcol else {}
    by_case: dict[str, str] = {}
    for cases, p in zip(df[ccol] if ccol else [], df[proj]):
        for case in (c.strip()[:12] for c in cases.split(",") if c.strip()):
            if by_case.setdefault(case, p.strip()) != p.strip():
                raise ConfigError(f"{path}: patient {case} is listed under two projects "
                                  f"({by_case[case]}, {p.strip()})")
    return by_file, by_case


def tcga_table(slides_dir: Path, preset: dict, manifest: Path | None = None) -> pd.DataFrame:
    if manifest is None:
        raise ConfigError(f"preset {preset['name']} needs --manifest: a GDC sample sheet or clinical "
                          "table with project_id per file or case")
    by_file, by_case = read_tcga_manifest(manifest)
    label_map, dx_only = preset["label_map"], preset.get("diagnostic_only", True)
    rows, bad, non_dx, unknown, other = [], [], [], [], []
    for stem in scan_slides(slides_dir):
        m = _TCGA.match(stem)
        if not m:
            bad.append(stem)
            continue
        if dx_only and m.group(3).upper() != "DX":
            non_dx.append(stem)
            continue
        patient = m.group(1).upper()
        project = by_file.get(stem) or by_case.get(patient)
        if project is None:
            unknown.append(stem)
        elif project not in label_map:
            other.append(stem)
        else:
            rows.append({"case_id": patient, "slide_id": stem, "label": label_map[project], "part": "",
                         "project": project})
    _skipped("TCGA", bad, "not a TCGA slide barcode")
    _skipped("TCGA", non_dx, "not a DX diagnostic slide")
    _skipped("TCGA", unknown, f"neither file nor patient in {manifest}")
    _skipped("TCGA", other, f"project not one of {sorted(label_map)}")
    return _finish(rows, preset["name"], slides_dir)


def _finish(rows: list[dict], kind: str, slides_dir: Path) -> pd.DataFrame:
    if not rows:
        raise ConfigError(f"{kind}: no labelled slides under {slides_dir} (see docs/mil.md, Task presets, "
                          "for the file names each preset reads)")
    df = pd.DataFrame(rows)
    extra = [c for c in df.columns if c not in COLUMNS]
    return df[COLUMNS + extra].sort_values("slide_id").reset_index(drop=True)
