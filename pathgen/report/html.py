"""Self-contained HTML report: every figure is embedded (base64), so the file can be mailed."""

from __future__ import annotations

import base64
import html
import json
import mimetypes
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import __version__
from ..atomic import write_text

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1200px;margin:2em auto;
color:#222;padding:0 1em}h1{border-bottom:2px solid #8a2be2}h2{margin-top:2em;color:#5b2a86}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}td,th{border:1px solid #ccc;padding:.3em .6em;
text-align:right}th{background:#f3eefa}td:first-child,th:first-child{text-align:left}
.figs{display:flex;flex-wrap:wrap;gap:1em}.figs figure{margin:0;max-width:380px}
.figs img{max-width:100%;border:1px solid #ddd}figcaption{font-size:.8em;color:#555}
pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:.8em}.note{color:#666;font-size:.9em}
"""


def embed_image(path: Path) -> str:
    mime = mimetypes.guess_type(str(path))[0] or "image/png"
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f"data:{mime};base64,{data}"


@dataclass
class Section:
    title: str
    parts: list[str] = field(default_factory=list)

    def text(self, text: str, cls: str = "") -> "Section":
        self.parts.append(f"<p class='{cls}'>{html.escape(text)}</p>")
        return self

    def table_csv(self, path: Path, caption: str = "", float_fmt: str = "{:.3f}") -> "Section":
        df = pd.read_csv(path)
        if caption:
            self.parts.append(f"<h3>{html.escape(caption)}</h3>")
        self.parts.append(df.to_html(index=False, float_format=lambda v: float_fmt.format(v), border=0))
        return self

    def key_values(self, data: dict, caption: str = "") -> "Section":
        rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(_short(v))}</td></tr>"
                       for k, v in data.items())
        if caption:
            self.parts.append(f"<h3>{html.escape(caption)}</h3>")
        self.parts.append(f"<table>{rows}</table>")
        return self

    def figures(self, paths: list[Path], captions: list[str] | None = None) -> "Section":
        items = []
        for i, p in enumerate(paths):
            cap = captions[i] if captions else Path(p).stem
            items.append(f"<figure><img src='{embed_image(Path(p))}'><figcaption>{html.escape(cap)}</figcaption></figure>")
        if items:
            self.parts.append("<div class='figs'>" + "".join(items) + "</div>")
        return self

    def raw(self, markup: str) -> "Section":
        self.parts.append(markup)
        return self

    def pre(self, text: str) -> "Section":
        self.parts.append(f"<pre>{html.escape(text)}</pre>")
        return self


def _short(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list)):
        s = json.dumps(v)
        return s if len(s) < 300 else s[:297] + "..."
    return str(v)


def render_page(title: str, sections: list[Section], out: Path) -> None:
    body = "".join(f"<h2>{html.escape(s.title)}</h2>" + "".join(s.parts) for s in sections if s.parts)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<p class='note'>Made by pathgen {__version__}.</p>{body}</body></html>")
    write_text(out, page)
