"""Resolve a training stage's datasets into what open_clip_train.main accepts.

open_clip reads one CSV (``--dataset-type csv``, pandas with ``--csv-separator``, which
defaults to TAB) whose image paths are opened relative to the *working directory*, or
WebDataset shards (``<key>.jpg`` + ``<key>.txt`` in ``.tar`` files, several sources joined
with ``::``, ``--train-num-samples`` needed unless the shard folder has ``sizes.json``).
Here we pick the separator explicitly, check the columns and a few image paths, and, when
needed (several CSVs, or relative paths that only resolve against the CSV's folder), write
one merged CSV with absolute paths into the stage folder.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..atomic import atomic_path
from ..config.base import ConfigError
from ..config.training import TrainStage
from ..dataset.files import dataset_card_beside, shard_count_files
from .files import training_merged_csv

log = logging.getLogger(__name__)

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
SEPARATOR_CANDIDATES = ("\t", ",", ";", "|")
MERGED_SEPARATOR = "\t"  # our own merged CSVs: TAB, open_clip's default, passed explicitly anyway


@dataclass(frozen=True)
class StageData:
    """What the trainer gets for one stage."""

    dataset_type: str            # "csv" | "webdataset"
    train_data: str              # one CSV path, or '::'-joined shard specs
    csv_separator: str | None
    csv_img_key: str
    csv_caption_key: str
    num_samples: int | None      # rows (csv) or samples per epoch (webdataset)


def detect_type(paths: list[str], declared: str) -> str:
    if declared != "auto":
        return declared
    kinds = {"webdataset" if (".tar" in p or p.startswith(("pipe:", "s3://", "http"))) else
             "csv" if p.lower().endswith(CSV_SUFFIXES) else "?" for p in paths}
    if "?" in kinds:
        bad = [p for p in paths if not (".tar" in p or p.lower().endswith(CSV_SUFFIXES))]
        raise ConfigError(f"cannot tell the dataset type of {bad}: use .csv/.tsv files or .tar "
                          "shards, or set dataset_type in the training stage")
    if len(kinds) > 1:
        raise ConfigError(f"a training stage mixes CSV and WebDataset sources ({paths}); open_clip "
                          "reads one kind per run: convert one side or split into two stages")
    return kinds.pop()


def separator_for(csv_path: Path, declared: str | None, img_key: str, caption_key: str) -> str:
    """Declared > dataset_card.json beside the CSV > the candidate that splits the header into
    columns containing both keys."""
    if declared is not None:
        return declared
    card = dataset_card_beside(csv_path)
    if card.exists():
        try:
            sep = json.loads(card.read_text()).get("csv_separator")
        except json.JSONDecodeError as err:
            raise ConfigError(f"{card} is not valid JSON ({err}); fix or delete it, or set "
                              "csv_separator in the training stage") from None
        if sep:
            return sep
    with open(csv_path, newline="", encoding="utf-8") as fh:
        header = fh.readline().rstrip("\r\n")
    for sep in SEPARATOR_CANDIDATES:
        cols = next(csv.reader([header], delimiter=sep))
        if img_key in cols and caption_key in cols:
            log.info("%s: separator %r detected from the header", csv_path, sep)
            return sep
    raise ConfigError(f"{csv_path}: header {header[:200]!r} has no columns {img_key!r} and "
                      f"{caption_key!r} under any of the separators {SEPARATOR_CANDIDATES}; set "
                      "csv_img_key/csv_caption_key/csv_separator in the training stage")


def read_pairs_csv(path: Path, sep: str, img_key: str, caption_key: str) -> pd.DataFrame:
    if not path.exists():
        raise FileNotFoundError(f"training CSV {path} does not exist (build the dataset first: "
                                "`snakemake build_dataset`, or set training.stages[].data)")
    try:
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path} cannot be read with separator {sep!r}: {err}") from None
    missing = [k for k in (img_key, caption_key) if k not in df.columns]
    if missing:
        raise ConfigError(f"{path}: columns {missing} not found (have {list(df.columns)[:10]}); "
                          f"with separator {sep!r} — is the separator right? set csv_separator / "
                          "csv_img_key / csv_caption_key in the training stage")
    if df.empty:
        raise ConfigError(f"{path} has no rows")
    return df


def _resolve_image_paths(df: pd.DataFrame, csv_path: Path, img_key: str) -> tuple[pd.Series, bool]:
    """Return absolute image paths and whether they differ from what open_clip would open."""
    paths = df[img_key].map(Path)
    resolved, changed = [], False
    for p in paths:
        if p.is_absolute() or p.exists():  # open_clip opens these as they are
            resolved.append(str(p))
        elif (csv_path.parent / p).exists():
            resolved.append(str((csv_path.parent / p).resolve()))
            changed = True
        else:
            resolved.append(str(p))
    missing = [r for r in resolved if not Path(r).exists()]
    if missing:
        raise FileNotFoundError(
            f"{csv_path}: {len(missing)} of {len(resolved)} images not found, e.g. {missing[0]} "
            "(paths are read relative to the working directory or to the CSV's folder)")
    return pd.Series(resolved, index=df.index), changed


def resolve_stage_data(stage: TrainStage, default_csv: Path, out_dir: Path,
                       write: bool = True) -> StageData:
    """Turn a stage's declared sources into one open_clip dataset (writing a merged CSV if
    needed; ``write=False`` only names it, for dry runs)."""
    sources = list(stage.data) or [str(default_csv)]
    kind = detect_type(sources, stage.dataset_type)
    if kind == "webdataset":
        return StageData("webdataset", "::".join(sources), None, stage.csv_img_key,
                         stage.csv_caption_key, stage.num_samples or _wds_count(sources))
    frames, rewrite, firsts = [], len(sources) > 1, []
    for src in sources:
        path = Path(src)
        if not path.exists():
            raise FileNotFoundError(f"training CSV {path} does not exist (build the dataset first, "
                                    "or fix training.stages[].data)")
        img_key, cap_key = _keys_for(path, stage)
        sep = separator_for(path, stage.csv_separator, img_key, cap_key)
        df = read_pairs_csv(path, sep, img_key, cap_key)
        df[img_key], changed = _resolve_image_paths(df, path, img_key)
        rewrite |= changed
        firsts.append((sep, img_key, cap_key))
        frames.append(df[[img_key, cap_key]].set_axis([stage.csv_img_key, stage.csv_caption_key],
                                                      axis=1))
    merged = pd.concat(frames, ignore_index=True)
    if not rewrite:
        sep, img_key, cap_key = firsts[0]
        return StageData("csv", str(Path(sources[0])), sep, img_key, cap_key, len(merged))
    target = training_merged_csv(out_dir)
    if write:
        with atomic_path(target) as tmp:
            merged.to_csv(tmp, sep=MERGED_SEPARATOR, index=False)
        log.info("stage %s: %d pairs from %d source(s) -> %s", stage.name, len(merged),
                 len(sources), target)
    return StageData("csv", str(target), MERGED_SEPARATOR, stage.csv_img_key,
                     stage.csv_caption_key, len(merged))


def _keys_for(csv_path: Path, stage: TrainStage) -> tuple[str, str]:
    """Column names: the stage's when set away from open_clip's defaults, else the ones
    recorded in the dataset_card.json beside the CSV (pathgen's dataset stage), else defaults."""
    card = {}
    card_path = dataset_card_beside(csv_path)
    if card_path.exists():
        try:
            card = json.loads(card_path.read_text())
        except json.JSONDecodeError:
            card = {}
    defaults = TrainStage.model_fields
    img = stage.csv_img_key
    cap = stage.csv_caption_key
    if img == defaults["csv_img_key"].default and card.get("csv_img_key"):
        img = card["csv_img_key"]
    if cap == defaults["csv_caption_key"].default and card.get("csv_caption_key"):
        cap = card["csv_caption_key"]
    return img, cap


def _wds_count(sources: list[str]) -> int | None:
    """Samples from count.json (pathgen's dataset stage) beside the shards; open_clip itself
    reads sizes.json, so return None there and let it."""
    total = 0
    for src in sources:
        folder = Path(src).parent
        files = shard_count_files(folder)
        count = files["count"]
        if count.exists():
            data = json.loads(count.read_text())
            n = data if isinstance(data, int) else next(
                (data[k] for k in ("num_samples", "count", "samples", "total") if k in data), None)
            if n is None:
                raise ConfigError(f"{count} has no num_samples/count key; set num_samples in the "
                                  "training stage")
            total += int(n)
        elif files["sizes"].exists():
            return None
        else:
            raise ConfigError(f"WebDataset source {src}: no count.json or sizes.json beside the "
                              "shards; set num_samples in the training stage")
    return total
