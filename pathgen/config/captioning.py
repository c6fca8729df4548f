"""Config section for the captioning stage (the describe -> revise -> summarize agents).

Three backends: ``openai`` (any OpenAI-compatible chat-completions server), ``transformers``
(a local Hugging Face image-text-to-text model) and ``morphometric`` (a measurement-based
baseline, not a language model). Settings that shape caption text are hashed into the output
folder name (:meth:`CaptioningConfig.tag`); filter thresholds are not (changing a filter
re-filters the cached agent outputs instead of re-captioning).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, field_validator, model_validator

from .base import Section


# Version of the measurement-based baseline; bump when its calls or wording change (it names
# the captions folder, so a change re-captions instead of resuming stale text).
MORPHOMETRIC_MODEL_ID = "morphometric-v3"


def url_has_credentials(url: str) -> bool:
    """True when ``url`` carries userinfo (``user:password@host``)."""
    try:
        parts = urlsplit(str(url).strip())
    except ValueError:
        return "@" in str(url)
    return "@" in parts.netloc


class OpenAIBackendConfig(Section):
    # a rejected value may hold a secret: pydantic must not echo it in error text
    model_config = ConfigDict(**Section.model_config, hide_input_in_errors=True)

    base_url: str = Field("http://127.0.0.1:8000/v1",
                          description="OpenAI-compatible server root (the part before "
                                      "/chat/completions), e.g. a vLLM or SGLang server.")
    model: str = Field("llava-hf/llava-1.5-7b-hf",
                       description="Model name sent in each request (describe and revise).")
    summarize_model: str | None = Field(
        None, description="Model for the summarize agent (text only); null = same as `model`.")
    api_key_env: str | None = Field(
        "OPENAI_API_KEY", description="NAME of the environment variable holding the API key "
                                      "(never the key itself); unset variable = no auth header.")
    max_tokens: int = Field(512, ge=1, description="max_tokens per describe/revise reply.")
    summary_max_tokens: int = Field(160, ge=1, description="max_tokens per summarize reply.")
    temperature: float = Field(0.2, ge=0, le=2)
    seed: int | None = Field(0, description="Sent as `seed` (servers that support it are "
                                            "then reproducible); null = not sent.")
    image_format: Literal["jpeg", "png"] = Field(
        "jpeg", description="Encoding of the image in the base64 data URL (files already in "
                            "this format are sent unchanged).")
    max_concurrent_requests: int = Field(32, ge=1, description="Requests in flight at once.")
    timeout_s: float = Field(120.0, gt=0, description="Per-request timeout.")
    max_retries: int = Field(5, ge=0, description="Retries on 429/5xx/timeouts/connection "
                                                  "errors/malformed replies.")
    backoff_base_s: float = Field(0.5, gt=0, description="First retry delay (doubles each time, "
                                                         "with jitter; Retry-After wins).")
    backoff_max_s: float = Field(30.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _no_credentials_in_url(cls, data):
        # mode="before" on the section: the error then shows the section as {...}, never the URL
        if isinstance(data, dict) and url_has_credentials(data.get("base_url", "")):
            raise ValueError(
                "captioning.openai.base_url must not hold credentials (user:password@host): "
                "they would be logged and stored with the config. Put the key in an "
                "environment variable and set captioning.openai.api_key_env to its NAME "
                "(sent as 'Authorization: Bearer <key>')")
        return data


class TransformersBackendConfig(Section):
    model: str = Field("llava-hf/llava-1.5-7b-hf",
                       description="HF id or local path of an image-text-to-text model "
                                   "(llava-hf, Qwen2-VL style) used by describe and revise.")
    text_model: str | None = Field(
        None, description="HF id/path of a causal LM for summarize; null = the VLM, text only.")
    device: str = Field("auto", description="'auto' (cuda if available), 'cpu', 'cuda:0', ...")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto", description="'auto' = bfloat16 on GPU, float32 on CPU.")
    batch_size: int = Field(8, ge=1, description="Prompts per generate() call.")
    batch_wait_ms: float = Field(20.0, ge=0, description="How long a batch waits to fill up.")
    max_new_tokens: int = Field(384, ge=1)
    summary_max_new_tokens: int = Field(120, ge=1)
    do_sample: bool = False
    trust_remote_code: bool = False


class MorphometricConfig(Section):
    """Thresholds of the measurement-based baseline (not a language model)."""

    nucleus_min_area_um2: float = Field(6.0, gt=0, description="Smaller H-positive objects "
                                                              "count as debris, not nuclei.")
    dense_nuclei_per_mm2: float = Field(2500.0, gt=0, description="Density called 'dense'.")
    sparse_nuclei_per_mm2: float = Field(900.0, gt=0, description="Density called 'sparse'.")
    large_nucleus_um2: float = Field(45.0, gt=0, description="Mean area called 'enlarged'.")
    small_nucleus_um2: float = Field(30.0, gt=0, description="Mean area called 'small'.")
    pleomorphism_cv: float = Field(0.6, gt=0, description="CV of nuclear area called "
                                                           "'pleomorphic'.")
    lumen_min_area_um2: float = Field(150.0, gt=0, description="White area inside tissue "
                                                               "counted as lumen/vacuole.")
    adipose_white_fraction: float = Field(0.45, gt=0, le=1)
    debris_per_mm2: float = Field(3000.0, gt=0, description="Small dark fragments per mm² "
                                                            "called necrosis-like.")


class FiltersConfig(Section):
    min_words: int = Field(8, ge=0, description="Captions with fewer words are rejected.")
    max_non_ascii_fraction: float = Field(0.05, ge=0, le=1, description="Non-ASCII characters "
                                          "allowed (µ, ², ± are exempt).")
    min_english_fraction: float = Field(0.08, ge=0, le=1, description="Share of words that must "
                                        "be common English function words.")
    over_budget: Literal["truncate", "reject"] = Field(
        "truncate", description="A caption over captioning.token_budget (imported, or a model "
        "that overran): 'truncate' cuts it at a sentence boundary and records it in provenance "
        "(truncated, tokens_before_truncation); 'reject' rejects it as over_budget.")
    ngram: int = Field(3, ge=2, description="n of the repeated n-gram check (multi-word medical "
                       "terms and content-word-only n-grams are ignored; loops are not).")
    max_ngram_repeats: int = Field(2, ge=1, description="An n-gram seen more often is rejected.")
    check_revision: bool = Field(True, description="Reject captions that mention a finding the "
                                                   "revise step removed.")
    alignment_encoder: str | None = Field(
        None, description="Reference CLIP (name in `encoders`/built-ins) for the optional "
                          "image-text alignment filter; null = off.")
    min_alignment: float = Field(0.15, ge=-1, le=1, description="Cosine similarity below this "
                                                                "is rejected.")
    extra_refusal_patterns: list[str] = Field(default_factory=list,
                                              description="More regexes treated as refusals.")

    @field_validator("extra_refusal_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for i, pat in enumerate(patterns):
            try:
                re.compile(pat)
            except re.error as err:
                raise ValueError(f"captioning.filters.extra_refusal_patterns[{i}] = {pat!r} is "
                                 f"not a valid regular expression: {err}") from None
        return patterns


class ServerConfig(Section):
    """The model server a caption chunk job starts itself (``captioning.serve: managed``)."""

    engine: Literal["vllm", "sglang", "command"] = Field(
        "vllm", description="'vllm' (`vllm serve`), 'sglang' (`python -m sglang.launch_server`) "
        "or 'command': captioning.server.command, any OpenAI-compatible server.")
    command: list[str] | None = Field(
        None, description="engine 'command': the server's argument list; {model}, {port} and "
        "{host} are filled in, and an item '{lora_modules}' becomes the NAME=PATH adapters.")
    bin_dir: Path | None = Field(None, description="Folder holding the engine's executables "
                                 "(vllm; python for sglang), e.g. the bin/ of the env from "
                                 "envs/engines/vllm.yaml; null = found on PATH.")
    startup_timeout_s: float = Field(1800.0, gt=0, description="How long the job waits for "
                                     "GET /v1/models to answer (weights loading) before failing.")
    max_restarts: int = Field(3, ge=0, description="Restarts of a server that dies mid-chunk "
                              "(its requests in flight are retried); then the job fails.")
    stop_grace_s: float = Field(30.0, gt=0, description="SIGTERM, then SIGKILL after this.")
    gpu_memory_utilization: float = Field(
        0.9, gt=0, le=1, description="Share of the GPU's memory for the server(s); split evenly "
        "when the agents need several servers side by side.")
    max_num_seqs: int = Field(64, ge=1, description="Sequences the server batches at once "
                              "(vllm --max-num-seqs, sglang --max-running-requests).")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs per server (ask "
                                      "resources.caption.gpu for as many).")
    max_lora_rank: int | None = Field(None, ge=1, description="vllm --max-lora-rank; null = "
                                      "the largest rank of the agents' adapters.")
    extra_args: list[str] = Field(default_factory=list, description="Appended to the engine's "
                                  "command line (e.g. ['--max-model-len', '8192']).")


AGENT_NAMES = ("describe", "revise", "summarize")
BackendName = Literal["openai", "transformers", "morphometric"]
# which agent setting applies to which backend (others are errors naming the key)
_AGENT_KEYS = {"openai": {"model", "endpoint", "api_key_env", "max_tokens", "temperature", "seed",
                          "max_concurrent_requests", "adapter"},
               "transformers": {"model", "max_tokens", "do_sample", "device"},
               "morphometric": set()}


class AgentConfig(Section):
    """One agent's own model; every unset key inherits the section's defaults
    (``captioning.backend`` and ``captioning.<backend>.*``)."""

    # a rejected endpoint may hold a secret: pydantic must not echo it in error text
    model_config = ConfigDict(**Section.model_config, hide_input_in_errors=True)

    backend: BackendName | None = Field(None, description="Backend of this agent; null = "
                                        "captioning.backend.")
    model: str | None = Field(None, description="Model of this agent (openai: name sent in the "
                              "request; transformers: HF id or folder); null = the backend's.")
    endpoint: str | list[str] | None = Field(
        None, description="openai: server root(s) (…/v1). A list spreads requests over several "
        "servers by outstanding load; one that fails is taken out and probed again later. "
        "null = captioning.openai.base_url.")
    api_key_env: str | None = Field(None, description="openai: NAME of the API-key variable; "
                                    "null = captioning.openai.api_key_env.")
    max_tokens: int | None = Field(None, ge=1, description="Reply length (openai max_tokens, "
                                   "transformers max_new_tokens); null = the backend's.")
    temperature: float | None = Field(None, ge=0, le=2, description="openai only.")
    seed: int | None = Field(None, description="openai only; null = captioning.openai.seed.")
    do_sample: bool | None = Field(None, description="transformers only.")
    device: str | None = Field(None, description="transformers only, e.g. cuda:1.")
    max_concurrent_requests: int | None = Field(None, ge=1, description="openai: requests in "
                                                "flight per endpoint.")
    adapter: str | None = Field(None, description="openai with serve: managed: a LoRA adapter "
                                "folder (`pathgen agents export --format adapter`) of this agent's "
                                "model; agents sharing a base model share ONE server.")

    @model_validator(mode="before")
    @classmethod
    def _endpoints_ok(cls, data):
        # mode="before" on the section: the error then shows the section as {...}, never the URL
        v = data.get("endpoint") if isinstance(data, dict) else None
        if isinstance(v, list) and not v:
            raise ValueError("endpoint list is empty; give at least one server root or null")
        urls = [v] if isinstance(v, str) else (v if isinstance(v, list) else [])
        if any(isinstance(u, str) and url_has_credentials(u) for u in urls):
            raise ValueError("endpoint must not hold credentials (user:password@host); set "
                             "api_key_env to the NAME of the variable holding the key")
        return data

    def set_keys(self) -> set[str]:
        return {k for k in type(self).model_fields if k != "backend" and getattr(self, k) is not None}


class AgentsConfig(Section):
    describe: AgentConfig = Field(default_factory=AgentConfig)
    revise: AgentConfig = Field(default_factory=AgentConfig)
    summarize: AgentConfig = Field(default_factory=AgentConfig)


@dataclass(frozen=True)
class AgentSpec:
    """One agent resolved against the section defaults: which backend, and that backend's
    config section with the agent's overrides applied (what the backend is built from)."""

    role: str
    backend: str
    model: str
    endpoints: tuple[str, ...]   # openai only (else empty)
    cfg: Section                 # OpenAIBackendConfig | TransformersBackendConfig | MorphometricConfig
    adapter: str | None = None   # openai + managed serving: LoRA adapter folder on `model`

    def shaping(self) -> dict:
        c = self.cfg
        if self.backend == "openai":
            out = dict(backend="openai", model=self.model, max_tokens=_reply_len(self.role, c),
                       temperature=c.temperature, seed=c.seed)
            return {**out, "adapter": self.adapter} if self.adapter else out
        if self.backend == "transformers":
            return dict(backend="transformers", model=self.model, dtype=c.dtype,
                        max_tokens=_reply_len(self.role, c), do_sample=c.do_sample)
        return dict(backend="morphometric", model=MORPHOMETRIC_MODEL_ID)


def _reply_len(role: str, c) -> int:
    if isinstance(c, OpenAIBackendConfig):
        return c.summary_max_tokens if role == "summarize" else c.max_tokens
    return c.summary_max_new_tokens if role == "summarize" else c.max_new_tokens


class CaptioningConfig(Section):
    backend: Literal["openai", "transformers", "morphometric"] = Field(
        "openai", description="Default backend of the three agents (captioning.agents.* "
        "may override it per agent): 'openai' = vision-language models behind an "
        "OpenAI-compatible server (the method's agents); 'morphometric' is a "
        "measurement-based baseline, not a language model (offline, deterministic; the demo's).")
    prompt_version: str = Field("v1", description="Suffix of the template files "
                                "pathgen/prompts/agents/<agent>.<version>.txt.")
    prompts_dir: Path | None = Field(None, description="Folder with your own <agent>.<version>.txt "
                                     "templates (overrides the packaged ones).")
    clip_arch: str = Field("ViT-B-16", description="open_clip architecture whose tokenizer "
                           "measures the caption token budget.")
    token_budget: int = Field(77, ge=8, description="Max caption tokens incl. SOT/EOT.")
    summary_retries: int = Field(1, ge=0, description="Re-asks with a tighter instruction when "
                                 "a summary is over budget (then sentence-level truncation).")
    concurrency: int = Field(32, ge=1, description="Patches in flight at once (producer/consumer).")
    max_failed_fraction: float = Field(
        0.1, ge=0, le=1, description="If more patches than this fail, the slide is left "
        "unfinished (partial kept) so a rerun retries the failures.")
    openai: OpenAIBackendConfig = Field(default_factory=OpenAIBackendConfig)
    transformers: TransformersBackendConfig = Field(default_factory=TransformersBackendConfig)
    morphometric: MorphometricConfig = Field(default_factory=MorphometricConfig)
    filters: FiltersConfig = Field(default_factory=FiltersConfig)
    agents: AgentsConfig = Field(default_factory=AgentsConfig, description="A model per agent: "
                                 "describe/revise/summarize may each name their own backend, "
                                 "model, endpoint(s) and generation settings; unset = inherit.")
    serve: Literal["external", "managed"] = Field(
        "external", description="openai agents: 'external' = servers you run (base_url / "
        "endpoint); 'managed' = each caption chunk job starts its own server on its node "
        "(captioning.server), sends its agents there and stops it at the end.")
    server: ServerConfig = Field(default_factory=ServerConfig)

    @model_validator(mode="after")
    def _agent_keys_apply(self):
        for role in AGENT_NAMES:
            a = getattr(self.agents, role)
            backend = a.backend or self.backend
            wrong = sorted(a.set_keys() - _AGENT_KEYS[backend])
            if wrong:
                ok = ", ".join(sorted(_AGENT_KEYS[backend])) or "none besides backend"
                raise ValueError(f"captioning.agents.{role}.{wrong[0]} does not apply to backend "
                                 f"{backend!r} (keys that do: {ok}); remove it or set "
                                 f"captioning.agents.{role}.backend")
        self._serving_ok()
        return self

    def _serving_ok(self) -> None:
        openai = [r for r in AGENT_NAMES if (getattr(self.agents, r).backend or self.backend) == "openai"]
        if self.serve == "external":
            bad = [r for r in AGENT_NAMES if getattr(self.agents, r).adapter]
            if bad:
                raise ValueError(f"captioning.agents.{bad[0]}.adapter needs captioning.serve: "
                                 "managed (with your own server, load the adapter there and name "
                                 "it as the agent's model)")
            return
        if not openai:
            raise ValueError("captioning.serve: managed starts an OpenAI-compatible server, but no "
                             "agent uses the openai backend; set captioning.backend: openai (or "
                             "captioning.agents.<agent>.backend) or serve: external")
        with_ep = [r for r in openai if getattr(self.agents, r).endpoint]
        if with_ep:
            raise ValueError(f"captioning.agents.{with_ep[0]}.endpoint is set, but with serve: "
                             "managed the job starts the server and sets the endpoint itself; "
                             "remove it (or use serve: external)")
        srv = self.server
        if srv.engine == "command" and not (srv.command and any("{port}" in a for a in srv.command)):
            raise ValueError("captioning.server.engine: command needs captioning.server.command, "
                             "an argument list with {port} (and {model}, {host}), e.g. "
                             "[python, -m, my_server, --model, '{model}', --port, '{port}']")
        if srv.engine == "sglang" and any(getattr(self.agents, r).adapter for r in openai):
            raise ValueError("captioning.agents.<agent>.adapter is served with engine vllm "
                             "(multi-LoRA: --enable-lora --lora-modules) or command; set "
                             "captioning.server.engine: vllm, or export merged models")

    def engine_executable(self) -> str:
        """The program a managed server starts (for `pathgen doctor` and the launch)."""
        srv = self.server
        name = {"vllm": "vllm", "sglang": "python"}.get(srv.engine) or (srv.command or ["?"])[0]
        return str(srv.bin_dir / name) if srv.bin_dir and srv.engine != "command" else name

    def gpus_needed(self) -> int:
        """GPUs a caption job uses itself: its managed server's (tensor_parallel_size) or one
        for local transformers agents; 0 when every agent talks to servers you run."""
        if self.serve == "managed":
            return self.server.tensor_parallel_size
        return int(any(self.agent(r).backend == "transformers" for r in AGENT_NAMES))

    def agent(self, role: str) -> AgentSpec:
        """``role``'s backend and its config with the agent's overrides (old single-model keys,
        e.g. openai.summarize_model or transformers.text_model, are the defaults)."""
        a = getattr(self.agents, role)
        backend = a.backend or self.backend
        summ = role == "summarize"
        if backend == "openai":
            o = self.openai
            model = a.model or (o.summarize_model if summ else None) or o.model
            eps = [a.endpoint] if isinstance(a.endpoint, str) else list(a.endpoint or [o.base_url])
            upd = {"model": model, "summarize_model": None, "base_url": eps[0]}
            if a.max_tokens is not None:
                upd["summary_max_tokens" if summ else "max_tokens"] = a.max_tokens
            upd.update({k: getattr(a, k) for k in ("api_key_env", "temperature", "seed",
                                                   "max_concurrent_requests")
                        if getattr(a, k) is not None})
            return AgentSpec(role, backend, model, tuple(eps), o.model_copy(update=upd), a.adapter)
        if backend == "transformers":
            t = self.transformers
            upd = {k: getattr(a, k) for k in ("do_sample", "device") if getattr(a, k) is not None}
            if summ:
                upd["text_model"] = a.model or t.text_model
                model = upd["text_model"] or t.model
            else:
                upd.update(model=a.model or t.model, text_model=None)
                model = upd["model"]
            if a.max_tokens is not None:
                upd["summary_max_new_tokens" if summ else "max_new_tokens"] = a.max_tokens
            return AgentSpec(role, backend, model, (), t.model_copy(update=upd))
        return AgentSpec(role, backend, MORPHOMETRIC_MODEL_ID, (), self.morphometric)

    def model_id(self) -> str:
        return self.agent("describe").model

    def shaping_settings(self) -> dict:
        """Settings that change caption text (hashed). Filters, concurrency, URLs, retries,
        timeouts and devices are left out: they do not change what a model writes."""
        out = {"backend": self.backend, "prompt_version": self.prompt_version,
               "clip_arch": self.clip_arch, "token_budget": self.token_budget,
               "summary_retries": self.summary_retries}
        if self.backend == "openai":
            o = self.openai
            out["openai"] = dict(model=o.model, summarize_model=o.summarize_model,
                                 max_tokens=o.max_tokens, summary_max_tokens=o.summary_max_tokens,
                                 temperature=o.temperature, seed=o.seed)
        elif self.backend == "transformers":
            t = self.transformers
            out["transformers"] = dict(model=t.model, text_model=t.text_model, dtype=t.dtype,
                                       max_new_tokens=t.max_new_tokens, do_sample=t.do_sample,
                                       summary_max_new_tokens=t.summary_max_new_tokens)
        else:
            out["morphometric"] = self.morphometric.model_dump(mode="json")
        agents = {r: self.agent(r).shaping() for r in AGENT_NAMES}
        legacy = self.model_copy(update={"agents": AgentsConfig()})
        # only when an agent writes differently: single-model configs keep their hash and folder
        if agents != {r: legacy.agent(r).shaping() for r in AGENT_NAMES}:
            out["agents"] = agents
            if "morphometric" in {self.agent(r).backend for r in AGENT_NAMES}:
                out["morphometric"] = self.morphometric.model_dump(mode="json")
        return out

    def prompt_hash(self) -> str:
        """Short hash of the prompt templates + shaping settings (stored in every record)."""
        from .prompts import load_templates  # stdlib only

        templates = load_templates(self.prompt_version, self.prompts_dir)
        blob = json.dumps({"templates": templates.texts(), "settings": self.shaping_settings()},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:10]

    def tag(self) -> str:
        """Folder-name tag; changes whenever a setting that shapes the captions changes,
        e.g. 'openai-llava-hf--llava-1.5-7b-hf-3f2a9c01de'."""
        model = re.sub(r"[^A-Za-z0-9._-]+", "-", self.model_id().replace("/", "--")).strip("-.")
        return f"{self.agent('describe').backend}-{model[:60]}-{self.prompt_hash()}"
