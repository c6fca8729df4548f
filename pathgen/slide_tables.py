"""Slide ids and the tables a config names (sample sheet, mpp overrides, dataset file ids).

Slide ids become file names and Snakemake wildcards, so they are restricted to a safe
character set, never reach a shell, and never end like a stage's side file
(``<slide>.partial.jsonl``, ``<slide>.rejects.jsonl``, ``<slide>.summary.json``).

Every table the config names is read with :func:`read_table`: a problem is a
:class:`ConfigError` naming the file and line, the column and the fix. Library code (tiling's
mpp overrides, the dataset's file ids and records) reads them from here; which slides a run
processes is :mod:`pathgen.cohort` (glue: it reads the whole config).
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .config import ConfigError

log = logging.getLogger("pathgen.slides")  # the name these warnings have always carried

# Suffixes of the per-slide side files (captioning's `<slide>.partial.jsonl`,
# `<slide>.rejects.jsonl`, `<slide>.summary.json`): a slide id ending in one would share its
# file names with another slide's side files. Compared case-insensitively (macOS, Windows).
RESERVED_SUFFIXES = (".partial", ".rejects", ".summary")
SLIDE_ID_PATTERN = (r"[A-Za-z0-9][A-Za-z0-9._-]*"
                    + "".join(rf"(?<!(?i:\{s}))" for s in RESERVED_SUFFIXES))
_SLIDE_ID_RE = re.compile(rf"^{SLIDE_ID_PATTERN}$")
_SAFE_CHARS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# Extensions whose stem is not enough to be unique/meaningful are still stripped once.
_MULTI_EXT = (".ome.tiff", ".ome.tif")


@dataclass(frozen=True)
class SlideRecord:
    slide_id: str
    path: Path
    mpp: float | None = None
    case_id: str | None = None
    label: str | None = None


def slide_id_problem(slide_id) -> str | None:
    """Why ``slide_id`` is not a safe slide id (None when it is)."""
    if not isinstance(slide_id, str):
        return f"is a {type(slide_id).__name__}, not a string"
    if not _SAFE_CHARS_RE.match(slide_id):
        return ("has characters outside [A-Za-z0-9._-] or does not start with a letter/digit "
                "(no '/', '..', spaces)")
    low = slide_id.lower()
    for suffix in RESERVED_SUFFIXES:
        if low.endswith(suffix):
            return (f"ends in {suffix!r}, which would collide with the side file "
                    f"<slide>{suffix}.json(l) of slide {slide_id[:-len(suffix)]!r}")
    return None


def check_slide_id(slide_id, origin: str) -> str:
    problem = slide_id_problem(slide_id)
    if problem is not None:
        raise ConfigError(
            f"slide id {slide_id!r} (from {origin}) {problem}. Rename the file, or list it in a "
            "sample sheet (slides.sample_sheet: CSV with slide_id,path) with a safe slide_id "
            "(letters, digits, '.', '_', '-'; not ending in "
            f"{', '.join(RESERVED_SUFFIXES)}).")
    return slide_id


def slide_id_from_path(path: Path) -> str:
    name = path.name
    for ext in _MULTI_EXT:
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return path.stem


# -- tables ---------------------------------------------------------------------------------

def _table_text(path: Path, what: str, columns: str) -> str:
    hint = f"{what} must be a UTF-8 text CSV with columns {columns}"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist; fix the path in the config") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {path} is a folder, not a CSV file") from None
    except OSError as err:
        raise ConfigError(f"{what} {path} cannot be read ({err.strerror}); {hint}") from None
    nul = data.find(b"\0")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise ConfigError(f"{path} line {line}: binary data (a NUL byte); {hint} "
                          "(re-export it as CSV)")
    data = data.removeprefix(b"\xef\xbb\xbf")  # a spreadsheet's UTF-8 byte order mark
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ConfigError(f"{path} line {line}: byte 0x{data[err.start]:02x} is not UTF-8 text; "
                          f"{hint} (in a spreadsheet: save as 'CSV UTF-8')") from None


def read_table(path: str | os.PathLike, what: str, required: tuple[str, ...],
               optional: tuple[str, ...] = (), nonempty: tuple[str, ...] | None = None,
               ) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Read a CSV the config names: (header, [(line, row)]) with every cell stripped.

    ``what`` is the config key (e.g. ``slides.sample_sheet``) used in messages. Errors are
    ConfigErrors naming the file and line: missing file, binary or non-UTF-8 data, a missing
    required column, a row with more fields than the header,
    a ``nonempty`` cell (default: the required columns) left empty. A row shorter than the
    header gets "" for its missing trailing cells.
    """
    path = Path(path)
    columns = ",".join(required) + (f" (optional {', '.join(optional)})" if optional else "")
    text = _table_text(path, what, columns)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            cells = [c.strip() for c in cells]
            if header is not None:
                while len(cells) > len(header) and not cells[-1]:
                    cells.pop()  # trailing empty fields (a spreadsheet's "a,b,")
            if header is None:
                header = cells
                missing = [c for c in required if c not in header]
                if missing:
                    raise ConfigError(f"{path} line {line}: {what} needs columns {columns}; the header "
                                      f"has {header}, missing {missing}")
                dup = sorted({c for c in header if c and header.count(c) > 1})
                if dup:
                    raise ConfigError(f"{path} line {line}: column(s) {dup} appear twice in the header")
                continue
            if len(cells) > len(header):
                raise ConfigError(
                    f"{path} line {line}: {len(cells)} fields but the header has {len(header)} "
                    f"({','.join(header)}); quote a value that contains ',' (\"a,b\")")
            row = dict(zip(header, cells + [""] * (len(header) - len(cells))))
            empty = [c for c in (required if nonempty is None else nonempty) if not row[c]]
            if empty:
                got = "short row: " if len(cells) < len(header) else ""
                raise ConfigError(f"{path} line {line}: {got}no value for column(s) {empty} "
                                  f"(row {cells}); fill it in or remove the row")
            rows.append((line, row))
    except csv.Error as err:
        raise ConfigError(f"{path} line {reader.line_num}: not valid CSV ({err}); {what} must be a "
                          f"CSV with columns {columns}") from None
    if header is None:
        raise ConfigError(f"{path}: {what} is empty; it needs a header line {','.join(required)}")
    return header, rows


def _positive_mpp(value: str, where: str) -> float:
    try:
        v = float(value)
    except ValueError:
        v = float("nan")
    if not math.isfinite(v) or v <= 0:
        raise ConfigError(f"{where}: mpp {value!r} is not a positive number "
                          "(expected level-0 µm/px, e.g. 0.25)")
    return v


def read_sample_sheet(path: Path) -> list[SlideRecord]:
    """slides.sample_sheet: checked, unique slide ids; relative paths are beside the sheet."""
    _, rows = read_table(path, "slides.sample_sheet", ("slide_id", "path"),
                         ("mpp", "case_id", "label", "file_id"))
    out, seen = [], {}
    for line, row in rows:
        sid = check_slide_id(row["slide_id"], f"{path} line {line}, column slide_id")
        if sid in seen:
            raise ConfigError(f"{path} line {line}: slide id {sid!r} is already on line {seen[sid]}; "
                              "slide ids must be unique (remove or rename one row)")
        seen[sid] = line
        p = Path(row["path"])
        if not p.is_absolute():
            p = path.parent / p
        # A missing slide file is not an error here: its chunk job quarantines it (state
        # record naming the path) and the other slides go on.
        mpp = row.get("mpp", "")
        mpp_v = _positive_mpp(mpp, f"{path} line {line}") if mpp else None
        out.append(SlideRecord(sid, p, mpp_v, row.get("case_id") or None, row.get("label") or None))
    return out


def _warn_unknown(path: Path, what: str, unknown: list[tuple[str, int]], n_known: int) -> None:
    if unknown:
        shown = ", ".join(f"{sid!r} ({path} line {line})" for sid, line in unknown[:10])
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        log.warning("%s: %d slide id(s) are not among this run's %d slides and are ignored: %s%s "
                    "(a typo, or a slide missing from slides.dir / slides.sample_sheet?)",
                    what, len(unknown), n_known, shown, more)


def read_id_table(path: str | os.PathLike, what: str, column: str, known=None,
                  parse=lambda value, where: value) -> dict[str, object]:
    """CSV slide_id,<column> -> dict, checked: safe ids, one value per id (a repeated row
    with the same value is fine), empty values skipped; ids not in ``known`` are warned."""
    path = Path(path)
    _, rows = read_table(path, what, ("slide_id", column), nonempty=("slide_id",))
    out: dict[str, object] = {}
    first: dict[str, int] = {}
    unknown = []
    for line, row in rows:
        sid = check_slide_id(row["slide_id"], f"{path} line {line}, column slide_id")
        if not row[column]:
            continue
        value = parse(row[column], f"{path} line {line}")
        if sid in out:
            if out[sid] != value:
                raise ConfigError(f"{path} line {line}: {column} for slide {sid!r} is given twice with "
                                  f"different values ({out[sid]!r} on line {first[sid]}, {value!r} "
                                  "here); keep one row per slide")
            continue
        out[sid], first[sid] = value, line
        if known is not None and sid not in known:
            unknown.append((sid, line))
    if known is not None:
        _warn_unknown(path, what, unknown, len(known))
    return out


def read_mpp_overrides(path: Path | None, known=None) -> dict[str, float]:
    """CSV slide_id,mpp -> dict. Missing/binary file, bad number or conflicting duplicate
    rows are ConfigErrors naming file and line; ids not in ``known`` (when given) are warned."""
    if path is None:
        return {}
    return read_id_table(path, "slides.mpp_overrides", "mpp", known, _positive_mpp)
