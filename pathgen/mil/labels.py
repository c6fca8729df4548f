"""Label tables: CLAM dataset CSV or STAMP clinical + slide tables -> one slide table.

CLAM convention: `case_id, slide_id, label` (one row per slide).
STAMP convention: clinical table `PATIENT, <target>` joined on `PATIENT` with a slide table
`PATIENT, FILENAME` (FILENAME may carry an extension; its stem is the slide id).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ..config import ConfigError

log = logging.getLogger(__name__)
_SLIDE_EXTS = (".svs", ".tif", ".tiff", ".ndpi", ".mrxs", ".scn", ".bif", ".vms", ".svslide",
               ".h5", ".pt", ".czi", ".dcm")


def read_table(path: Path, fix: str = "fix the task's `labels`/`slide_table`") -> pd.DataFrame:
    """A CSV, or TSV by extension (.tsv/.txt), all columns as text."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"labels table {path} does not exist; {fix}")
    sep = "\t" if path.suffix.lower() in (".tsv", ".txt") else ","
    return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)


def _slide_stem(name: str) -> str:
    name = Path(str(name).strip()).name
    low = name.lower()
    for ext in (".ome.tiff", ".ome.tif") + _SLIDE_EXTS:
        if low.endswith(ext):
            return name[: -len(ext)]
    return name


def read_labels(labels: str | Path, classes: list[str], *, target: str = "label",
                slide_table: str | Path | None = None,
                label_map: dict[str, str] | None = None) -> pd.DataFrame:
    """Return a DataFrame `case_id, slide_id, label, y` (y = index in `classes`).

    Rows with an empty label are dropped with a warning; labels outside `classes` (after
    `label_map`) are an error naming the file and the values.
    """
    labels = Path(labels)
    df = read_table(labels)
    if slide_table is not None:
        slides = read_table(Path(slide_table))
        for need, tab, path in (({"PATIENT", target}, df, labels),
                                ({"PATIENT", "FILENAME"}, slides, Path(slide_table))):
            missing = need - set(tab.columns)
            if missing:
                raise ConfigError(f"{path} lacks column(s) {sorted(missing)} (STAMP tables: clinical "
                                  f"`PATIENT,<target>`, slide `PATIENT,FILENAME`); found {list(tab.columns)}")
        merged = slides.merge(df[["PATIENT", target]], on="PATIENT", how="inner")
        out = pd.DataFrame({"case_id": merged["PATIENT"].str.strip(),
                            "slide_id": merged["FILENAME"].map(_slide_stem),
                            "label": merged[target].str.strip()})
        source = f"{labels} + {slide_table}"
    else:
        need = {"slide_id", target}
        missing = need - set(df.columns)
        if missing:
            raise ConfigError(f"{labels} lacks column(s) {sorted(missing)}; a CLAM dataset CSV has "
                              f"`case_id,slide_id,label` (set the task's `target` for another label "
                              f"column, or `slide_table` for STAMP tables); found {list(df.columns)}")
        case = df["case_id"] if "case_id" in df.columns else df["slide_id"]
        out = pd.DataFrame({"case_id": case.str.strip(), "slide_id": df["slide_id"].str.strip(),
                            "label": df[target].str.strip()})
        source = str(labels)
    out.loc[out["case_id"] == "", "case_id"] = out["slide_id"]
    empty = out["label"].isin(["", "nan", "NaN", "NA"])
    if empty.any():
        log.warning("%s: %d slide(s) without a label dropped: %s", source, int(empty.sum()),
                    ", ".join(out.loc[empty, "slide_id"].head(10)))
        out = out[~empty]
    if label_map:
        out["label"] = out["label"].map(lambda v: label_map.get(v, v))
    unknown = sorted(set(out["label"]) - set(classes))
    if unknown:
        raise ConfigError(f"{source}: label(s) {unknown} are not in the task's classes {classes}; "
                          "add them to `classes` or map them with `label_map`")
    dup = out["slide_id"][out["slide_id"].duplicated()]
    if len(dup):
        raise ConfigError(f"{source}: slide id(s) listed twice: {sorted(set(dup))[:10]}")
    if out.empty:
        raise ConfigError(f"{source}: no labelled slides")
    out["y"] = out["label"].map({c: i for i, c in enumerate(classes)}).astype(int)
    return out.reset_index(drop=True)
