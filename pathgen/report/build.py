"""Assemble the run summary page from the files the stages wrote (never their internals).

Every input is optional: a stage that is switched off simply has no section.
"""

from __future__ import annotations

import html
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from ..dataset.files import DATASET_CARD_JSON, OPEN_CLIP_CSV, PATHGEN_JSON
from ..instruct.files import INSTRUCT_CARD_JSON
from ..mil.files import MIL_TABLE_CSV
from ..training.files import LOSS_PNG
from ..zeroshot.files import ZEROSHOT_TABLE_CSV
from .files import CAPTION_TOKENS_PNG
from .html import Section, embed_image, render_page


@dataclass
class ReportInputs:
    config: dict
    qc_images: list[Path] = field(default_factory=list)
    dataset_dir: Path | None = None
    training_dir: Path | None = None
    zeroshot_dir: Path | None = None
    mil_dir: Path | None = None
    instruct_dir: Path | None = None
    # per-slide stage failures (pathgen.runner.state.failed_members): quarantined slides
    slide_problems: list[dict] = field(default_factory=list)
    n_slides: int | None = None
    n_gallery: int = 8
    n_heatmaps: int = 4
    seed: int = 0


def _exists(p: Path | None) -> bool:
    return p is not None and Path(p).exists()


def _histogram_png(card: dict, out: Path) -> Path | None:
    hist = (card.get("caption_tokens") or {}).get("histogram")
    if not hist or not hist.get("counts"):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges, counts = hist["bin_edges"], hist["counts"]
    fig, ax = plt.subplots(figsize=(5, 2.6), dpi=110)
    ax.bar(edges[:-1], counts, width=[b - a for a, b in zip(edges[:-1], edges[1:])], align="edge",
           color="#8a5bb8", edgecolor="white")
    ctx = card.get("caption_tokens", {}).get("context_length")
    if ctx:
        ax.axvline(ctx, color="crimson", ls="--", lw=1, label=f"CLIP context ({ctx})")
        ax.legend(fontsize=8)
    ax.set_xlabel("caption length (open_clip tokens)")
    ax.set_ylabel("captions")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def _gallery(dataset_dir: Path, n: int, seed: int) -> str:
    """A few pairs with their three texts, images embedded (the dataset's own gallery links files)."""
    meta_path = dataset_dir / PATHGEN_JSON
    csv_path = dataset_dir / OPEN_CLIP_CSV
    if not (meta_path.exists() and csv_path.exists()):
        return ""
    import pandas as pd

    card = json.loads((dataset_dir / DATASET_CARD_JSON).read_text())
    df = pd.read_csv(csv_path, sep=card.get("csv_separator", "\t"))
    if df.empty:
        return ""
    img_key, cap_key = card.get("csv_img_key", "filepath"), card.get("csv_caption_key", "title")
    rows = df.sample(n=min(n, len(df)), random_state=seed)
    cells = []
    for _, r in rows.iterrows():
        img = Path(r[img_key])
        if not img.is_absolute():
            img = dataset_dir / img
        if not img.exists():
            continue
        cells.append(f"<figure><img src='{embed_image(img)}'><figcaption>{html.escape(str(r[cap_key]))}"
                     "</figcaption></figure>")
    return "<div class='figs'>" + "".join(cells) + "</div>" if cells else ""


def _quarantine_section(inp: ReportInputs) -> Section:
    """Slides that failed a per-slide stage (or were blocked by one) and why."""
    sec = Section("Slides not processed")
    failed = [p for p in inp.slide_problems if p.get("status") == "failed"]
    if not inp.slide_problems:
        sec.text(f"All {inp.n_slides if inp.n_slides is not None else ''} slides finished every "
                 "per-slide stage.")
        return sec
    sec.text(f"{len({p['slide_id'] for p in failed})} slide(s) failed a stage and were quarantined; "
             "the aggregates ran on the others. `pathgen status` shows the same table; fix the "
             "cause and rerun: only these slides are redone.")
    rows = "".join(
        f"<tr><td>{html.escape(p['slide_id'])}</td><td>{html.escape(p['stage'])}</td>"
        f"<td>{html.escape(p['status'])}</td><td>{html.escape(str(p.get('error') or ''))}</td></tr>"
        for p in inp.slide_problems)
    sec.raw("<table><tr><th>slide</th><th>stage</th><th>status</th><th>error</th></tr>"
            f"{rows}</table>")
    return sec


def _overview_section(cfg: dict) -> Section:
    demo = (cfg.get("demo", {}).get("enabled") and not cfg.get("slides", {}).get("dir")
            and not cfg.get("slides", {}).get("sample_sheet"))
    tiling = {k: cfg["tiling"].get(k) for k in ("preset", "patch_size_um", "target_mpp", "tissue_threshold")}
    return Section("Overview").key_values({
        "slides source": "demo (synthetic Aperio slides)" if demo else "user slides",
        "tiling": json.dumps(tiling),
        "encoder": cfg.get("features", {}).get("encoder"),
        "captioning backend": cfg.get("captioning", {}).get("backend")})


def _dataset_section(inp: ReportInputs, workdir: Path) -> Section | None:
    if not (_exists(inp.dataset_dir) and (inp.dataset_dir / DATASET_CARD_JSON).exists()):
        return None
    card = json.loads((inp.dataset_dir / DATASET_CARD_JSON).read_text())
    ds = Section("Caption dataset")
    tok = card.get("caption_tokens", {})
    ds.key_values({k: card.get(k) for k in ("n_slides", "n_records", "n_accepted", "n_rejected", "n_pairs")
                   if k in card} | {f"tokens {k}": v for k, v in tok.items() if not isinstance(v, dict)})
    if card.get("reject_reasons"):
        ds.key_values(card["reject_reasons"], "Rejected captions by reason")
    png = _histogram_png(card, workdir / CAPTION_TOKENS_PNG)
    if png:
        ds.figures([png], ["Caption length in open_clip tokens"])
    gal = _gallery(inp.dataset_dir, inp.n_gallery, inp.seed)
    if gal:
        ds.raw("<h3>Gallery (random sample)</h3>" + gal)
    return ds


def _training_section(inp: ReportInputs) -> Section | None:
    if not _exists(inp.training_dir):
        return None
    tr = Section("CLIP training")
    losses = sorted(Path(inp.training_dir).rglob(LOSS_PNG))
    tr.figures(losses, [f"training loss ({p.relative_to(inp.training_dir).parent})" for p in losses])
    meta = sorted(Path(inp.training_dir).rglob("training_meta.json")) + sorted(Path(inp.training_dir).glob("final*.json"))
    # baselines (training.baselines): training/baselines/<name>/final.json
    meta += sorted(Path(inp.training_dir).glob("baselines/*/final.json"))
    for m in meta:
        run = json.loads(m.read_text())
        tr.key_values({k: v for k, v in run.items() if not isinstance(v, (list, dict))},
                      f"Run: {run.get('baseline') or 'main'}")
    return tr


def _results_section(title: str, folder: Path, table: str, table_caption: str,
                     figures: list[Path], caption_of: Callable[[Path], str]) -> Section:
    """An evaluation stage's section: its summary table (when written), then its figures."""
    sec = Section(title)
    if (folder / table).exists():
        sec.table_csv(folder / table, table_caption)
    return sec.figures(figures, [caption_of(p) for p in figures])


def _zeroshot_section(inp: ReportInputs) -> Section | None:
    if not _exists(inp.zeroshot_dir):
        return None
    cms = sorted(Path(inp.zeroshot_dir).rglob("confusion_*.png"))
    return _results_section("Zero-shot classification", inp.zeroshot_dir, ZEROSHOT_TABLE_CSV,
                            "Model × benchmark (95 % bootstrap CIs)", cms,
                            lambda p: f"{p.parent.parent.name} / {p.parent.name} / {p.stem}")


def _mil_section(inp: ReportInputs) -> Section | None:
    if not _exists(inp.mil_dir):
        return None
    maps = sorted(Path(inp.mil_dir).rglob("heatmaps/**/*.png"))
    random.Random(inp.seed).shuffle(maps)
    maps = sorted(maps[: inp.n_heatmaps])
    return _results_section("Slide-level MIL", inp.mil_dir, MIL_TABLE_CSV,
                            "Task × encoder × model (mean ± sd over folds)", maps,
                            lambda p: f"{p.parts[-5] if len(p.parts) > 5 else ''} {p.stem}")


def _comparison_section(inp: ReportInputs) -> Section | None:
    """The caption-trained CLIP vs its baselines on the same benchmarks (training.baselines)."""
    from .comparison import comparison_table, compared_models, mil_rows, verdict, zeroshot_rows

    models = compared_models(inp.config)
    if not models:
        return None
    rows = []
    if _exists(inp.zeroshot_dir):
        rows += zeroshot_rows(Path(inp.zeroshot_dir) / ZEROSHOT_TABLE_CSV, models)
    if _exists(inp.mil_dir):
        rows += mil_rows(Path(inp.mil_dir) / MIL_TABLE_CSV, models)
    if not rows:
        return None
    sec = Section("Captions vs baselines")
    sec.text("Same architecture, schedule, seed and patches; only the training text differs: "
             f"{models[0]} learns from each patch's caption, a baseline from other text "
             "(slide_text: the slide's label sentence for every patch). A last column, when "
             "present, is the features encoder (random init in the demo).")
    for b in inp.config["training"]["baselines"]:
        sec.text(verdict(rows, models[0], f"{models[0]}-{b}"))
    if "slide_text" in inp.config["training"]["baselines"] and any(r.metric.startswith("MIL") for r in rows):
        sec.text("Caution: slide_text's training text is the slide label, which is also the MIL "
                 "target of the captioned slides, so its MIL scores on those slides are not "
                 "independent of their labels.", "note")
    table = comparison_table(rows, models)
    return sec.raw(table.to_html(index=False, border=0))


def _instruct_section(inp: ReportInputs) -> Section | None:
    if not (_exists(inp.instruct_dir) and (inp.instruct_dir / INSTRUCT_CARD_JSON).exists()):
        return None
    return Section("Instruction data").key_values(json.loads((inp.instruct_dir / INSTRUCT_CARD_JSON).read_text()))


def build_report(inp: ReportInputs, out_html: Path, workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    sections: list[Section] = [_overview_section(inp.config), _quarantine_section(inp)]
    if inp.qc_images:
        sections.append(Section("Tissue segmentation and tiling (QC)").figures(inp.qc_images))
    stages = (_dataset_section(inp, workdir), _training_section(inp), _comparison_section(inp),
              _zeroshot_section(inp), _mil_section(inp), _instruct_section(inp))
    sections += [sec for sec in stages if sec is not None]
    sections.append(Section("Configuration used").pre(yaml.safe_dump(inp.config, sort_keys=False)))
    render_page("pathgen run report", sections, out_html)
