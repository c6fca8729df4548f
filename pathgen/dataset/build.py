"""`build_dataset`: every caption slide's final JSONL -> results/dataset/.

A pure function of the per-slide files: rerunning after adding slides rebuilds the aggregate
files, reusing the image links and any WebDataset shard whose content did not change.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

from ..atomic import write_json, write_text
from ..config.dataset import DatasetConfig
from .card import build_card, card_markdown, gallery_html
from .pathgen_json import write_pathgen_json
from .records import SlideCaptions, load_slide
from .writers import sample_key, sync_images, write_csv, write_shards

log = logging.getLogger(__name__)

# Output names inside the dataset folder (docs/architecture.md "Dataset").
OUTPUTS = {"pathgen_json": "pathgen.json", "open_clip_csv": "open_clip.csv",
           "shards_count": "shards/count.json", "card_json": "dataset_card.json",
           "card_md": "dataset_card.md", "gallery": "gallery.html"}


COMPANION_SUFFIXES = (".partial.jsonl", ".rejects.jsonl")


def output_paths(out_dir: str | os.PathLike) -> dict[str, Path]:
    return {k: Path(out_dir) / v for k, v in OUTPUTS.items()}


def read_file_ids(path: str | os.PathLike | None) -> dict[str, str]:
    if path is None:
        return {}
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"dataset.file_ids {path} does not exist")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if not {"slide_id", "file_id"} <= set(reader.fieldnames or []):
            raise ValueError(f"{path} needs columns slide_id,file_id")
        return {r["slide_id"].strip(): r["file_id"].strip() for r in reader if r["file_id"].strip()}


def file_ids_from_sheet(sample_sheet: str | os.PathLike | None) -> dict[str, str]:
    """slide_id -> file_id from the sample sheet's optional `file_id` column (else {})."""
    if sample_sheet is None or not Path(sample_sheet).exists():
        return {}
    with open(sample_sheet, newline="") as fh:
        reader = csv.DictReader(fh)
        if "file_id" not in (reader.fieldnames or []):
            return {}
        return {r["slide_id"].strip(): r["file_id"].strip() for r in reader
                if (r.get("file_id") or "").strip()}


def resolve_image(rec: dict, caption_file: Path, images_root: Path | None) -> Path:
    """Find the patch file a caption record names (`image`, relative to the patches root)."""
    image = rec.get("image") or f"{rec['slide_id']}/{int(rec['x'])}_{int(rec['y'])}.jpg"
    p = Path(image)
    tried = []
    if p.is_absolute():
        tried.append(p)
    else:
        if images_root is not None:
            tried.append(Path(images_root) / p)
        tried += [caption_file.parent.parent / "selection" / "patches" / p, caption_file.parent / p]
    for t in tried:
        if t.is_file():
            return t
    raise FileNotFoundError(
        f"{caption_file}: image {image!r} of ({rec['x']}, {rec['y']}) not found; tried "
        f"{', '.join(str(t) for t in tried)}. Set dataset.images_root (CLI --images-root) to the "
        "selection patches folder.")


def _samples(slides: list[SlideCaptions], images_root: Path | None, accepted_only: bool,
             file_ids: dict[str, str]) -> list[dict]:
    out, keys = [], {}
    for sc in slides:
        recs = sc.accepted if accepted_only else sc.accepted + [
            r for r in sc.rejected if r.get("status", "ok") == "ok" and r.get("caption")]
        for r in sorted(recs, key=lambda r: (int(r["y"]), int(r["x"]))):
            if not str(r.get("caption") or "").strip():
                continue
            src = resolve_image(r, sc.path, images_root)
            key = sample_key(str(r["slide_id"]), r["x"], r["y"])
            if key in keys:
                raise ValueError(f"two caption records map to sample key {key!r} ({keys[key]} and "
                                 f"{sc.path}); slide ids must stay unique after replacing '.'")
            keys[key] = sc.path
            fid = r.get("file_id") or file_ids.get(str(r["slide_id"]))
            meta = {k: r.get(k) for k in ("slide_id", "x", "y", "level", "size", "mpp", "backend",
                                          "model", "prompt_hash", "describe", "revise", "caption",
                                          "n_tokens")}
            meta.update(wsi_id=str(r["slide_id"]), position=[str(int(r["x"])), str(int(r["y"]))])
            if fid:
                meta["file_id"] = fid
            out.append({"key": key, "caption": str(r["caption"]), "src_image": src,
                        "rel_image": f"{r['slide_id']}/{src.name}", "meta": meta,
                        "slide_id": str(r["slide_id"]), "x": int(r["x"]), "y": int(r["y"]),
                        "file_id": fid})
    return out


def build_dataset(caption_files: list[str | os.PathLike], out_dir: str | os.PathLike,
                  dcfg: DatasetConfig | None = None, images_root: str | os.PathLike | None = None,
                  file_ids: dict[str, str] | None = None) -> dict:
    """Assemble the dataset folder; returns the card (also written as dataset_card.json)."""
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
    dup = {s.slide_id for s in slides if sum(t.slide_id == s.slide_id for t in slides) > 1}
    if dup:
        raise ValueError(f"caption files for the same slide given twice: {sorted(dup)}")
    samples = _samples(slides, root, dcfg.accepted_only, fids)
    removed = sync_images(samples, out / "images", dcfg.images)
    write_csv(paths["open_clip_csv"], samples, out, dcfg.csv_separator, dcfg.csv_img_key,
              dcfg.csv_caption_key, dcfg.csv_paths)
    write_pathgen_json(paths["pathgen_json"],
                       [{"slide_id": s["slide_id"], "x": s["x"], "y": s["y"],
                         "caption": s["caption"], "file_id": s["file_id"]} for s in samples])
    shards = write_shards(out / "shards", samples, dcfg.shard_size)
    write_text(paths["gallery"], gallery_html(samples, dcfg.gallery_size, dcfg.seed))
    files_info = {k: str(v) for k, v in paths.items()}
    files_info.update(images_dir=str(out / "images"), shards_dir=str(out / "shards"))
    card = build_card(slides, samples, dcfg, {
        "files": files_info,
        "shards": {k: shards[k] for k in ("num_samples", "num_shards", "shard_size", "pattern")}})
    write_text(paths["card_md"], card_markdown(card))
    write_json(paths["card_json"], card)
    log.info("dataset: %d slides, %d pairs, %d shards (%d reused), %d stale images removed -> %s",
             len(slides), len(samples), shards["num_shards"], shards["reused_shards"], removed, out)
    return card
