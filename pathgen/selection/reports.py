"""Report-derived prompts: short morphology findings extracted from a slide's pathology
report, turned into retrieval prompts (PathGen-1.6M method §3.1b).

Two extractors:
- an LLM through the text-chat adapter (``chat(prompt) -> reply``, pathgen.instruct.chat);
- ``keyword``: an OFFLINE, deterministic, rule-based sentence filter (no language model) for
  demos, tests and air-gapped runs. It is labelled as such in the cache and the CSV.
Findings are cached per (extractor, report) hash in a JSON file, so reruns and slides of the
same case never ask the LLM twice.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
from pathlib import Path
from ..atomic import write_json
from ..config import ConfigError
from ..instruct.chat import ChatFn
from .files import report_findings_cache

log = logging.getLogger(__name__)

KEYWORD_EXTRACTOR = "keyword"
KEYWORD_ID = "keyword-rules-v1 (offline rule-based, not an LLM)"
LLM_PROMPT_VERSION = "findings-v1"

LLM_PROMPT = """You read surgical pathology reports. From the report below, list the \
morphological findings that would be visible on the H&E slide of the tumor (growth patterns, \
differentiation, cell features, necrosis, invasion, inflammation, stroma). Write at most \
{max_findings} findings, one per line, each a short noun phrase of 3 to 15 words, with no \
numbering, no measurements, no staging codes, no patient details and no findings that are \
not morphological. If there are none, answer NONE.

REPORT:
{report}
"""


# Words that mark a sentence as morphology (stems; matched at word starts).
_MORPH = ("carcinom", "adenocarcinom", "sarcom", "melanom", "gliom", "glioblastom", "lymphom",
          "tumor", "tumour", "neoplas", "gland", "acinar", "papillar", "micropapillar", "lepidic",
          "solid", "cribriform", "mucin", "mucinous", "signet", "keratin", "squamous", "necros",
          "necrotic", "invasi", "infiltrat", "differentiat", "pleomorph", "nucle", "mitos",
          "mitotic", "atypi", "dysplas", "stroma", "desmoplas", "fibros", "inflamm", "lymphocyt",
          "lymphovascular", "perineural", "hemorrhag", "haemorrhag", "calcif", "psammoma",
          "clear cell", "spindle", "sarcomatoid", "rhabdoid", "trabecul", "nest", "sheet",
          "palisad", "budding", "grade", "gleason", "tubul", "follicul", "cyst", "ulcer",
          "metaplas", "hyperplas", "in situ", "comedo", "vascular prolif")
# Administrative / gross / staging content that is not visible morphology.
_ADMIN = re.compile(
    r"\b(received|specimen|labeled|labelled|submitted|dictat|signed|cassette|block|gross|"
    r"margin|cm\b|mm\b|pt\d|pn\d|pm\d|ajcc|tnm|stage|icd|physician|clinical history|"
    r"date|report|page|accession|frozen section|immunohisto|ihc|her2|ki-?67|comment)",
    re.I)
_MORPH_RE = re.compile(r"\b(" + "|".join(re.escape(m) for m in _MORPH) + r")", re.I)


def report_hash(report: str, extractor_id: str) -> str:
    blob = f"{extractor_id}\n{' '.join(report.split())}".encode()
    return hashlib.sha256(blob).hexdigest()


def _clean_finding(s: str) -> str:
    s = re.sub(r"^\s*(?:[-*•·]+|\(?\d+[.)]|[a-z][.)])\s*", "", s)      # bullets / numbering
    s = re.sub(r"\d+(?:\.\d+)?\s*(?:cm|mm|%)", "", s, flags=re.I)      # measurements
    s = re.sub(r"\s+", " ", s).strip(" .;:,-\"'")
    return s


def parse_findings(text: str, max_findings: int) -> list[str]:
    """Lines of an LLM reply -> cleaned, de-duplicated findings (NONE -> [])."""
    out: list[str] = []
    for line in text.splitlines():
        f = _clean_finding(line)
        if not f or f.upper().startswith("NONE") or f.endswith(":"):
            continue
        words = f.split()
        if len(words) < 2 or len(words) > 25:
            continue
        if f.lower() not in (o.lower() for o in out):
            out.append(f)
        if len(out) >= max_findings:
            break
    return out


def keyword_findings(report: str, max_findings: int) -> list[str]:
    """Offline rule-based extractor: keep report sentences/clauses that name morphology and
    none of the administrative/staging content. Deterministic; no language model."""
    text = re.sub(r"\s+", " ", report)
    pieces = re.split(r"(?<=[.;])\s+|\s+-\s+|\n", text)
    out: list[str] = []
    for piece in pieces:
        for clause in re.split(r",\s+(?=(?:with|and|showing|without)\b)", piece):
            f = _clean_finding(clause)
            if not f or _ADMIN.search(f) or not _MORPH_RE.search(f):
                continue
            if re.search(r"\b(no|negative for|absent|not identified|free of)\b", f, re.I):
                continue  # negated findings are not something to look for
            words = f.split()
            if len(words) < 2:
                continue
            f = " ".join(words[:20]).lower()
            if f not in out:
                out.append(f)
            if len(out) >= max_findings:
                return out
    return out


def extract_findings(report_text: str, chat: ChatFn, max_findings: int = 10) -> list[str]:
    """Ask an LLM (a ``chat(prompt) -> reply`` function) for morphology findings."""
    reply = chat(LLM_PROMPT.format(max_findings=max_findings, report=report_text.strip()))
    if not isinstance(reply, str):
        raise TypeError(f"the chat returned {type(reply).__name__}, expected str")
    return parse_findings(reply, max_findings)


def cached_findings(report: str, extractor_id: str, cache_dir: Path, compute) -> list[str]:
    """Findings for `report` from `cache_dir/<hash>.json`, computing (and caching) on a miss."""
    h = report_hash(report, extractor_id)
    path = report_findings_cache(cache_dir, h)
    if path.exists():
        try:
            data = json.loads(path.read_text())
            if data.get("report_sha256") == h and isinstance(data.get("findings"), list):
                return [str(x) for x in data["findings"]]
        except (json.JSONDecodeError, OSError):
            log.warning("report cache %s is unreadable; recomputing", path)
    findings = compute(report)
    write_json(path, {"report_sha256": h, "extractor": extractor_id, "findings": findings})
    return findings


def findings_to_prompts(findings: list[str], template: str) -> list[str]:
    if "{finding}" not in template:
        raise ConfigError("selection.report_prompt_template must contain '{finding}'")
    return [template.format(finding=f) for f in findings]


def load_reports(path: str | Path) -> dict[str, dict[str, str]]:
    """Reports CSV (columns report + slide_id and/or case_id) -> {"slide": {...}, "case": {...}}."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"selection.reports file {path} does not exist")
    by_slide: dict[str, str] = {}
    by_case: dict[str, str] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        cols = set(reader.fieldnames or [])
        if "report" not in cols or not ({"slide_id", "case_id"} & cols):
            raise ConfigError(f"reports CSV {path} needs a 'report' column and a 'slide_id' or "
                              f"'case_id' column; found {sorted(cols)}")
        for row in reader:
            text = (row.get("report") or "").strip()
            if not text:
                continue
            if (row.get("slide_id") or "").strip():
                by_slide[row["slide_id"].strip()] = text
            if (row.get("case_id") or "").strip():
                by_case[row["case_id"].strip()] = text
    return {"slide": by_slide, "case": by_case}


def case_id_guess(slide_id: str) -> str | None:
    """TCGA barcodes: the case (patient) id is the first 12 characters (TCGA-XX-XXXX)."""
    return slide_id[:12] if re.match(r"^TCGA-[A-Z0-9]{2}-[A-Z0-9]{4}", slide_id) else None


def report_for(slide_id: str, reports: dict[str, dict[str, str]], case_id: str | None = None) -> str | None:
    if slide_id in reports["slide"]:
        return reports["slide"][slide_id]
    for cid in (case_id, case_id_guess(slide_id)):
        if cid and cid in reports["case"]:
            return reports["case"][cid]
    return None
