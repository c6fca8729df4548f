"""File names of the run report (``<results>/report/``).

No config import.
"""

from __future__ import annotations

REPORT_DIR = "report"                       # <results>/report/
SUMMARY_HTML = "summary.html"
CAPTION_TOKENS_PNG = "caption_tokens.png"   # report work folder: caption-length histogram
REPORT_FIGURES_DIR = "figures"
