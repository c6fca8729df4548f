"""Dataset card (JSON + Markdown) and the HTML gallery.

Caption lengths are counted with the real open_clip tokenizer of `tokenizer_arch` (falling
back to open_clip's default SimpleTokenizer), untruncated, including the start/end tokens,
so `over_context_fraction` is the share of captions CLIP training will truncate.
"""

from __future__ import annotations

import html
import logging
import random
import shlex
from collections import Counter
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def token_counter(arch: str):
    """Return (count(text) -> int, description of the tokenizer actually used)."""
    import open_clip
    from open_clip.tokenizer import SimpleTokenizer

    from open_clip.factory import get_model_config

    if get_model_config(arch) is None:  # maybe one of pathgen's own configs
        own = Path(__file__).resolve().parents[1] / "model_configs"
        if own.is_dir():
            open_clip.add_model_config(own)
    tok = None
    if get_model_config(arch) is not None:
        try:
            tok = open_clip.get_tokenizer(arch)
            desc = f"open_clip.get_tokenizer({arch!r}) -> {type(tok).__name__}"
        except Exception as err:  # e.g. an HF tokenizer that needs the hub (offline)
            log.warning("tokenizer of %s unavailable (%s)", arch, err)
    if tok is None:
        log.warning("no open_clip tokenizer for %r; counting with open_clip's SimpleTokenizer", arch)
        tok = SimpleTokenizer()
        desc = f"open_clip SimpleTokenizer (fallback; {arch!r} unavailable)"
    if isinstance(tok, SimpleTokenizer):
        return (lambda t: len(tok.encode(t)) + 2), desc  # + <start_of_text>, <end_of_text>
    inner = getattr(tok, "tokenizer", None)
    if inner is not None and callable(inner):
        return (lambda t: len(inner(t)["input_ids"])), desc
    simple = SimpleTokenizer()
    return (lambda t: len(simple.encode(t)) + 2), f"open_clip SimpleTokenizer (fallback for {desc})"


def length_stats(values: list[int], bin_width: int, context: int | None = None) -> dict:
    if not values:
        return {"n": 0}
    a = np.asarray(values)
    top = int(a.max()) // bin_width * bin_width + bin_width
    edges = list(range(0, top + 1, bin_width))
    counts, _ = np.histogram(a, bins=edges)
    out = {"n": int(a.size), "mean": round(float(a.mean()), 2), "median": float(np.median(a)),
           "min": int(a.min()), "max": int(a.max()), "p95": float(np.percentile(a, 95)),
           "histogram": {"bin_edges": edges, "counts": [int(c) for c in counts]}}
    if context is not None:
        out["context_length"] = context
        out["over_context"] = int((a > context).sum())
        out["over_context_fraction"] = round(float((a > context).mean()), 4)
    return out


def build_card(slides, samples: list[dict], dcfg, extra: dict) -> dict:
    count, tok_desc = token_counter(dcfg.tokenizer_arch)
    tokens = [count(s["caption"]) for s in samples]
    words = [len(s["caption"].split()) for s in samples]
    reasons: Counter = Counter()
    per_slide = []
    for sc in slides:
        r = sc.reject_reasons
        reasons.update(r)
        per_slide.append({"slide_id": sc.slide_id, "n_records": len(sc.accepted) + len(sc.rejected),
                          "n_accepted": len(sc.accepted), "n_rejected": len(sc.rejected),
                          "reject_reasons": dict(sorted(r.items())), "summary": sc.summary})
    # The captioning stage's own per-slide counts (every filter, zeros included), summed.
    from_summaries: Counter = Counter()
    for sc in slides:
        rr = (sc.summary or {}).get("reject_reasons")
        if isinstance(rr, dict):
            for k, v in rr.items():
                if isinstance(v, (int, float)):
                    from_summaries[str(k)] += int(v)
    n_acc = sum(len(sc.accepted) for sc in slides)
    n_rej = sum(len(sc.rejected) for sc in slides)
    models = Counter(f"{s['meta'].get('backend')}/{s['meta'].get('model')}" for s in samples)
    return {
        "n_slides": len(slides), "n_records": n_acc + n_rej, "n_accepted": n_acc,
        "n_rejected": n_rej, "n_pairs": len(samples),
        "accepted_only": dcfg.accepted_only,
        "csv_separator": dcfg.csv_separator, "csv_img_key": dcfg.csv_img_key,
        "csv_caption_key": dcfg.csv_caption_key, "csv_paths": dcfg.csv_paths,
        "tokenizer": {"arch": dcfg.tokenizer_arch, "used": tok_desc},
        "caption_tokens": length_stats(tokens, 8, dcfg.context_length),
        "caption_words": length_stats(words, 5),
        "reject_reasons": dict(reasons.most_common()),
        "reject_reasons_from_summaries": dict(sorted(from_summaries.items())),
        "caption_models": dict(models.most_common()),
        **extra,
        "per_slide": per_slide,
    }


def _sep_name(sep: str) -> str:
    return {"\t": "TAB (\\t)", ",": "comma (,)", ";": "semicolon (;)", "|": "pipe (|)"}.get(sep, repr(sep))


def _sep_arg(sep: str) -> str:
    """The separator as a shell argument (bash ANSI-C quoting for TAB)."""
    return "$'\\t'" if sep == "\t" else shlex.quote(sep)


def card_markdown(card: dict) -> str:
    t = card["caption_tokens"]
    sh = card.get("shards", {})
    lines = [
        "# pathgen caption dataset", "",
        f"- slides: {card['n_slides']}; caption records: {card['n_records']} "
        f"(accepted {card['n_accepted']}, rejected {card['n_rejected']})",
        f"- image-caption pairs: {card['n_pairs']}",
        f"- open_clip CSV: `{card['files']['open_clip_csv']}`, separator {_sep_name(card['csv_separator'])}, "
        f"columns `{card['csv_img_key']}` / `{card['csv_caption_key']}`, {card['csv_paths']} paths",
        f"- WebDataset: {sh.get('num_shards', 0)} shards `{sh.get('pattern', '')}`, "
        f"{sh.get('num_samples', 0)} samples",
        f"- tokenizer: {card['tokenizer']['used']}", "",
        "## Training with open_clip", "", "```",
        "python -m open_clip_train.main --dataset-type csv "
        f"--train-data {card['files']['open_clip_csv']} --csv-img-key {card['csv_img_key']} "
        f"--csv-caption-key {card['csv_caption_key']} --csv-separator "
        f"{_sep_arg(card['csv_separator'])}",
        f"python -m open_clip_train.main --dataset-type webdataset --train-data "
        f"'{card['files']['shards_dir']}/{sh.get('pattern', '')}' --train-num-samples {sh.get('num_samples', 0)}",
        "```", "",
        "## Caption length (tokens, untruncated, incl. start/end)", ""]
    if t.get("n"):
        lines += [f"mean {t['mean']}, median {t['median']}, min {t['min']}, max {t['max']}, "
                  f"p95 {t['p95']}; over {t['context_length']}: {t['over_context']} "
                  f"({100 * t['over_context_fraction']:.1f} %)", "",
                  "| tokens | captions |", "| --- | --- |"]
        e, c = t["histogram"]["bin_edges"], t["histogram"]["counts"]
        lines += [f"| {e[i]}-{e[i + 1] - 1} | {c[i]} |" for i in range(len(c)) if c[i]]
    else:
        lines.append("(no captions)")
    lines += ["", "## Reject reasons", ""]
    lines += ([f"- {k}: {v}" for k, v in card["reject_reasons"].items()] or ["(none)"])
    if card.get("reject_reasons_from_summaries"):
        lines += ["", "Captioning summaries (all filters): " + ", ".join(
            f"{k} {v}" for k, v in card["reject_reasons_from_summaries"].items())]
    lines += ["", "## Per slide", "", "| slide | records | accepted | rejected | top reject reasons |",
              "| --- | --- | --- | --- | --- |"]
    for s in card["per_slide"]:
        top = ", ".join(f"{k} ({v})" for k, v in sorted(s["reject_reasons"].items(),
                                                        key=lambda kv: -kv[1])[:3])
        lines.append(f"| {s['slide_id']} | {s['n_records']} | {s['n_accepted']} | "
                     f"{s['n_rejected']} | {top} |")
    return "\n".join(lines) + "\n"


def gallery_html(samples: list[dict], n: int, seed: int) -> str:
    pick = random.Random(seed).sample(samples, min(n, len(samples))) if samples else []
    pick.sort(key=lambda s: s["key"])
    esc = html.escape
    cards = []
    for s in pick:
        m = s["meta"]
        cards.append(
            f'<div class="c"><img src="images/{esc(s["rel_image"])}" loading="lazy" alt="{esc(s["key"])}">'
            f'<p class="id">{esc(m["slide_id"])} ({m["x"]}, {m["y"]})</p>'
            f'<details><summary>describe</summary><p>{esc(str(m.get("describe") or ""))}</p></details>'
            f'<details><summary>revise</summary><p>{esc(str(m.get("revise") or ""))}</p></details>'
            f'<p><b>caption</b> {esc(s["caption"])}</p></div>')
    return ("<!doctype html><html><head><meta charset='utf-8'><title>pathgen gallery</title><style>"
            "body{font-family:sans-serif;margin:1em}.g{display:flex;flex-wrap:wrap;gap:12px}"
            ".c{width:320px;border:1px solid #ccc;padding:6px;font-size:13px}"
            ".c img{width:100%}.id{color:#666}</style></head><body>"
            f"<h1>pathgen gallery: {len(pick)} of {len(samples)} pairs (seed {seed})</h1>"
            f"<div class='g'>{''.join(cards)}</div></body></html>\n")
