"""`build_dataset`: every caption slide's final JSONL -> results/dataset/.

A pure function of the per-slide files: rerunning after adding slides rebuilds the aggregate
files, reusing the image links and any WebDataset shard whose content did not change.
Every input record is checked (records.py, resolve_image) before anything is written, so a
hostile or broken caption file never writes outside ``out_dir`` or links in a foreign file.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..atomic import write_json, write_text
from ..config.dataset import DatasetConfig
from ..captioning.files import CAPTIONS_PARTIAL_SUFFIX, CAPTIONS_REJECTS_SUFFIX
from ..selection.files import features_selection_dir, selection_patches_dir
from ..slide_tables import read_id_table, read_table
from .card import build_card, card_markdown, gallery_html
from .dedup import dedup_markdown, dedup_samples, features_for
from .files import DATASET_IMAGES_DIR, DATASET_OUTPUTS, DATASET_SHARDS_DIR, dataset_files
from .pathgen_json import write_pathgen_json
from .records import DatasetInputError, SlideCaptions, load_slide
from .writers import sample_key, sync_images, write_csv, write_shards

log = logging.getLogger(__name__)

# Output names inside the dataset folder (docs/architecture.md "Dataset"), named in .files.
OUTPUTS = DATASET_OUTPUTS
# captioning's side files that a captions/*.jsonl glob also matches
COMPANION_SUFFIXES = (CAPTIONS_PARTIAL_SUFFIX, CAPTIONS_REJECTS_SUFFIX)


def output_paths(out_dir: str | os.PathLike) -> dict[str, Path]:
    return dataset_files(out_dir)


def read_file_ids(path: str | os.PathLike | None) -> dict[str, str]:
    """dataset.file_ids (CSV slide_id,file_id), checked like every table the config names."""
    if path is None:
        return {}
    return read_id_table(path, "dataset.file_ids", "file_id")


def file_ids_from_sheet(sample_sheet: str | os.PathLike | None) -> dict[str, str]:
    """slide_id -> file_id from the sample sheet's optional `file_id` column (else {})."""
    if sample_sheet is None or not Path(sample_sheet).exists():
        return {}
    header, rows = read_table(sample_sheet, "slides.sample_sheet", ("slide_id",))
    if "file_id" not in header:
        return {}
    return {row["slide_id"]: row["file_id"] for _, row in rows if row.get("file_id")}


def run_file_ids(sample_sheet: str | os.PathLike | None,
                 file_ids_table: str | os.PathLike | None) -> dict[str, str]:
    """slide_id -> file_id of a run: dataset.file_ids, then the sample sheet's `file_id`
    column (it wins, as in build_dataset). Read when the DAG is built, so the ids themselves
    are rule build_dataset's params: editing either table reruns it."""
    return {**read_file_ids(file_ids_table), **file_ids_from_sheet(sample_sheet)}


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def image_roots(caption_file: Path, images_root: Path | None) -> list[Path]:
    """The folders a record's `image` may be in (images_root, then the layout's defaults)."""
    roots = [Path(images_root)] if images_root is not None else []
    # a captions folder sits in its features folder, beside selection/ (pathgen.paths.Layout)
    roots += [selection_patches_dir(features_selection_dir(caption_file.parent.parent)), caption_file.parent]
    return roots


def resolve_image(rec: dict, caption_file: Path, images_root: Path | None,
                  where: str | None = None) -> Path:
    """The real path of the patch file a caption record names (`image`, relative to the
    patches root). It must stay inside that root: '..' parts, absolute paths elsewhere and
    symlinks that lead out of the root are refused (DatasetInputError naming file, line and
    field), so no record can pull another file into images/ or a shard."""
    where = where or str(caption_file)
    image = rec.get("image") or f"{rec['slide_id']}/{int(rec['x'])}_{int(rec['y'])}.jpg"
    roots = image_roots(caption_file, images_root)
    p = Path(image)
    allowed = ", ".join(str(r) for r in roots)
    fix = ("image paths are relative to the selection patches folder (dataset.images_root / "
           "--patches-root) and must stay inside it")
    if ".." in p.parts:
        raise DatasetInputError(f"{where}, field 'image': {image!r} contains '..'; {fix}")
    rel_in = []  # (root, path relative to it)
    if p.is_absolute():
        norm = Path(os.path.normpath(p))
        rel_in = [(r, norm.relative_to(Path(os.path.abspath(r)))) for r in roots
                  if _inside(norm, Path(os.path.abspath(r)))]
        if not rel_in:
            raise DatasetInputError(f"{where}, field 'image': absolute path {image!r} is outside "
                                    f"the allowed folders ({allowed}); {fix}")
    else:
        rel_in = [(r, p) for r in roots]
    tried = []
    for root, rel in rel_in:
        cand = root / rel
        tried.append(cand)
        if not os.path.lexists(cand):
            continue
        real_root = root.resolve()
        real = cand.resolve()
        if not _inside(real, real_root):
            raise DatasetInputError(f"{where}, field 'image': {image!r} resolves to {real} "
                                    f"(a symlink) outside {root}; refused. Put the patch file "
                                    "itself inside the patches folder")
        if real.is_file():
            return real
    raise FileNotFoundError(
        f"{where}: image {image!r} of ({rec['x']}, {rec['y']}) not found; tried "
        f"{', '.join(str(t) for t in tried)}. Set dataset.images_root (CLI --patches-root) to the "
        "selection patches folder.")


# dataset.caption_stage -> the caption record field holding that agent's text
# (pathgen.captioning.pipeline: describe, revise, and the summary as `caption`).
STAGE_FIELDS = {"describe": "describe", "revise": "revise", "summarize": "caption"}


def caption_text(rec: dict, stage: str = "summarize") -> str:
    """The text of `stage` in a caption record ("" when that agent left none)."""
    return str(rec.get(STAGE_FIELDS[stage]) or "").strip()


def _samples(slides: list[SlideCaptions], images_root: Path | None, accepted_only: bool,
             file_ids: dict[str, str], stage: str = "summarize") -> list[dict]:
    out, keys, rels = [], {}, {}
    for sc in slides:
        recs = sc.accepted if accepted_only else sc.accepted + [
            r for r in sc.rejected if r.get("status", "ok") == "ok" and r.get("caption")]
        for r in sorted(recs, key=lambda r: (int(r["y"]), int(r["x"]))):
            text = caption_text(r, stage)
            if not text:
                continue
            where = sc.where(r)
            src = resolve_image(r, sc.path, images_root, where)
            key = sample_key(str(r["slide_id"]), r["x"], r["y"])
            if key in keys:
                raise DatasetInputError(
                    f"{where}: sample key {key!r} is already used by {keys[key]}; two records "
                    "of one position, or slide ids that collide after replacing '.' (rename one)")
            keys[key] = where
            name = Path(r.get("image") or src.name).name
            rel = f"{r['slide_id']}/{name}"
            if rel in rels:
                raise DatasetInputError(f"{where}, field 'image': images/{rel} is already the "
                                        f"image of {rels[rel]}; each record needs its own file")
            rels[rel] = where
            fid = r.get("file_id") or file_ids.get(str(r["slide_id"]))
            meta = {k: r.get(k) for k in ("slide_id", "x", "y", "level", "size", "mpp", "backend",
                                          "model", "prompt_hash", "describe", "revise", "caption",
                                          "n_tokens")}
            meta.update(wsi_id=str(r["slide_id"]), position=[str(int(r["x"])), str(int(r["y"]))])
            if fid:
                meta["file_id"] = fid
            out.append({"key": key, "caption": text, "src_image": src,
                        "rel_image": rel, "meta": meta,
                        "slide_id": str(r["slide_id"]), "x": int(r["x"]), "y": int(r["y"]),
                        "file_id": fid})
    return out


def caption_stage_info(slides: list[SlideCaptions], dcfg: DatasetConfig) -> dict:
    """Which agent's text the captions are, and how many usable records had none (card)."""
    recs = [r for sc in slides for r in sc.accepted + ([] if dcfg.accepted_only else sc.rejected)
            if r.get("status", "ok") == "ok" and str(r.get("caption") or "").strip()]
    missing = sum(not caption_text(r, dcfg.caption_stage) for r in recs)
    if missing:
        log.warning("dataset.caption_stage %s: %d caption records have no %r text; left out",
                    dcfg.caption_stage, missing, STAGE_FIELDS[dcfg.caption_stage])
    return {"stage": dcfg.caption_stage, "field": STAGE_FIELDS[dcfg.caption_stage],
            "missing_text": missing}


def stage_markdown(info: dict) -> str:
    note = "" if info["stage"] == "summarize" else " (per-agent ablation: not the final captions)"
    return (f"\n## Caption text\n\nAgent: `{info['stage']}` (record field `{info['field']}`){note}; "
            f"records without that text: {info['missing_text']}\n")


def build_dataset(caption_files: list[str | os.PathLike], out_dir: str | os.PathLike,
                  dcfg: DatasetConfig | None = None, images_root: str | os.PathLike | None = None,
                  file_ids: dict[str, str] | None = None,
                  features: dict[str, str | os.PathLike] | None = None) -> dict:
    """Assemble the dataset folder; returns the card (also written as dataset_card.json).

    `features` (slide -> features HDF5) is only read for dataset.dedup_cosine; default
    <captions folder>/../<slide>.h5."""
    dcfg = dcfg or DatasetConfig()
    out = Path(out_dir)
    paths = output_paths(out)
    root = Path(images_root) if images_root is not None else dcfg.images_root
    fids = {**read_file_ids(dcfg.file_ids), **(file_ids or {})}
    files = sorted({Path(f) for f in caption_files}, key=lambda p: p.name)
    # A shell glob like captions/*.jsonl also matches the companions; only the final file counts.
    skipped = [f for f in files if f.name.endswith(COMPANION_SUFFIXES)]
    if skipped:
        log.info("skipping %d companion files (%s)", len(skipped), ", ".join(COMPANION_SUFFIXES))
        files = [f for f in files if f not in skipped]
    slides = [load_slide(f) for f in files]
    first: dict[str, Path] = {}
    for sc in slides:
        if sc.slide_id in first:
            raise DatasetInputError(f"caption files for the same slide given twice: {first[sc.slide_id]} "
                                    f"and {sc.path} (slide {sc.slide_id!r}); pass each slide once")
        first[sc.slide_id] = sc.path
    samples = _samples(slides, root, dcfg.accepted_only, fids, dcfg.caption_stage)
    stage_info = caption_stage_info(slides, dcfg)
    dedup_report = {"enabled": False}
    if dcfg.dedup_cosine is not None:
        feats = features_for(slides, features, lambda sc: sc.path.parent.parent)
        samples, dedup_report = dedup_samples(samples, feats, dcfg.dedup_cosine, dcfg.dedup_neighbors,
                                              dcfg.dedup_exact_max, dcfg.dedup_nprobe)
    removed = sync_images(samples, out / DATASET_IMAGES_DIR, dcfg.images)
    write_csv(paths["open_clip_csv"], samples, out, dcfg.csv_separator, dcfg.csv_img_key,
              dcfg.csv_caption_key, dcfg.csv_paths)
    write_pathgen_json(paths["pathgen_json"],
                       [{"slide_id": s["slide_id"], "x": s["x"], "y": s["y"],
                         "caption": s["caption"], "file_id": s["file_id"]} for s in samples])
    shards = write_shards(out / DATASET_SHARDS_DIR, samples, dcfg.shard_size)
    write_text(paths["gallery"], gallery_html(samples, dcfg.gallery_size, dcfg.seed))
    files_info = {k: str(v) for k, v in paths.items()}
    files_info.update(images_dir=str(out / DATASET_IMAGES_DIR), shards_dir=str(out / DATASET_SHARDS_DIR))
    card = build_card(slides, samples, dcfg, {
        "files": files_info,
        "shards": {k: shards[k] for k in ("num_samples", "num_shards", "shard_size", "pattern")},
        "caption_stage": stage_info, "dedup": dedup_report})
    write_text(paths["card_md"], card_markdown(card) + stage_markdown(stage_info) + dedup_markdown(dedup_report))
    write_json(paths["card_json"], card)
    log.info("dataset: %d slides, %d pairs, %d shards (%d reused), %d stale images removed -> %s",
             len(slides), len(samples), shards["num_shards"], shards["reused_shards"], removed, out)
    return card
