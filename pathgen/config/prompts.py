"""Versioned prompt templates for the three agents, rendered with ``string.Template``.

Templates live in ``pathgen/prompts/agents/<agent>.<version>.txt`` (or a user folder); their
exact text is hashed into every caption record and the output folder name, so editing a
prompt never mixes captions made by two different prompts. Stdlib only (imported by config).
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from pathlib import Path

AGENT_TEMPLATES = ("describe", "revise", "summarize", "summarize_tight")
PACKAGED_DIR = Path(__file__).resolve().parent.parent / "prompts" / "agents"  # pathgen/prompts/agents


class PromptError(ValueError):
    pass


@dataclass(frozen=True)
class Templates:
    version: str
    sources: dict[str, str]   # agent -> file the text came from
    _texts: dict[str, str]

    def texts(self) -> dict[str, str]:
        return dict(self._texts)

    def render(self, agent: str, **values) -> str:
        try:
            return string.Template(self._texts[agent]).substitute(**values).strip()
        except KeyError as err:
            raise PromptError(f"prompt template {self.sources.get(agent, agent)} uses "
                              f"${err.args[0]} which the {agent} agent does not provide") from None

    def hash(self) -> str:
        blob = "\0".join(f"{k}\0{self._texts[k]}" for k in sorted(self._texts))
        return hashlib.sha256(blob.encode()).hexdigest()[:10]


def load_templates(version: str = "v1", prompts_dir: str | Path | None = None) -> Templates:
    """Read every agent template; a user folder wins over the packaged files per agent."""
    texts, sources = {}, {}
    for agent in AGENT_TEMPLATES:
        name = f"{agent}.{version}.txt"
        candidates = ([Path(prompts_dir) / name] if prompts_dir else []) + [PACKAGED_DIR / name]
        for path in candidates:
            if path.is_file():
                texts[agent] = path.read_text(encoding="utf-8")
                sources[agent] = str(path)
                break
        else:
            raise PromptError(f"no prompt template {name} in "
                              f"{' or '.join(str(c.parent) for c in candidates)}; set "
                              "captioning.prompt_version / captioning.prompts_dir to a folder "
                              f"holding {', '.join(a + '.' + version + '.txt' for a in AGENT_TEMPLATES)}")
    return Templates(version, sources, texts)
