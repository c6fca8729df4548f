"""Backend for any OpenAI-compatible chat-completions server (vLLM, SGLang, TGI, llama.cpp,
OpenAI itself). Request/response format: the OpenAI Chat Completions API
(``POST {base_url}/chat/completions``; images as ``image_url`` parts holding base64 data URLs).

Retries with exponential backoff + jitter on 429, 5xx, timeouts, connection errors and
malformed replies; ``Retry-After`` is honoured (seconds or an HTTP date; anything else means
the default backoff). Per-item 4xx (e.g. vLLM's 400 for one over-long prompt) fail that item
with the server's message and the run goes on; 401/403 (credentials) and 404 / "model does not
exist" (wrong base_url or model) stop the run with one message naming base_url and the model.
A semaphore bounds the requests in flight.

Credentials travel only in the ``Authorization`` header (key from ``api_key_env``); the
httpx/httpcore loggers are kept at WARNING and a filter redacts userinfo and Authorization
values from their records, so no log line carries a secret.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import email.utils
import io
import logging
import math
import os
import random
import re
import ssl
import time
from pathlib import Path

import certifi
import httpx
from PIL import Image

from ..budget import TokenBudget
from ..items import AgentError, CaptioningAborted, PatchItem, Reply
from ..serving import gate_for
from .base import AGENT_ROLES, Backend

log = logging.getLogger(__name__)
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
AUTH_STATUS = {401, 403, 407}
# "The model `x` does not exist." (vLLM, OpenAI), "model 'x' not found" (Ollama, llama.cpp)
_MODEL_MISSING = re.compile(r"model_not_found|\bmodel\b[^.\n]{0,160}?\b(does not exist|not found)"
                            r"|\b(unknown|no such) model\b", re.I)


class FatalRequestError(CaptioningAborted):
    """A reply that retrying cannot fix and that every item would get (bad credentials, wrong
    base_url, model not served): the run stops with this message."""


_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
_AUTH_VALUE = re.compile(r"(?i)(\b(?:proxy-)?authorization\b['\"]?\s*[:=,]\s*(?:b(?=['\"]))?['\"]?"
                         r"(?:(?:bearer|basic|token|digest)\s+)?)[^\s'\",)]+")


def redact(text: str) -> str:
    """``text`` with URL userinfo and Authorization values replaced by ``***``."""
    return _AUTH_VALUE.sub(r"\1***", _USERINFO.sub("***@", text))


class RedactSecrets(logging.Filter):
    """Rewrites a record whose message carries URL userinfo or an Authorization value."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # a broken record is not ours to fix
            return True
        clean = redact(msg)
        if clean != msg:
            record.msg, record.args = clean, ()
        return True


_REDACT = RedactSecrets()


def protect_http_logs() -> None:
    """httpx logs every request URL at INFO, httpcore the wire at DEBUG: keep both at WARNING
    unless the user set a level on purpose, and redact whatever they still log."""
    for name in ("httpx", "httpcore"):
        lg = logging.getLogger(name)
        if lg.level == logging.NOTSET:
            lg.setLevel(logging.WARNING)
    for lg in (logging.getLogger("httpx"), log):
        if _REDACT not in lg.filters:
            lg.addFilter(_REDACT)


def image_data_url(path: Path, fmt: str = "jpeg") -> str:
    """base64 data URL of a patch file; re-encoded only if it is not already ``fmt``."""
    raw = Path(path).read_bytes()
    mime = {"jpeg": "image/jpeg", "png": "image/png"}[fmt]
    is_fmt = raw[:3] == b"\xff\xd8\xff" if fmt == "jpeg" else raw[:8] == b"\x89PNG\r\n\x1a\n"
    if not is_fmt:
        buf = io.BytesIO()
        Image.open(io.BytesIO(raw)).convert("RGB").save(buf, format=fmt.upper(), quality=92)
        raw = buf.getvalue()
    return f"data:{mime};base64,{base64.b64encode(raw).decode('ascii')}"


def _retry_after(resp: httpx.Response) -> float | None:
    """Seconds to wait from ``Retry-After`` (delta-seconds or an HTTP date); None (= the
    default backoff) when absent or unparseable, e.g. ``Retry-After: soon``."""
    value = (resp.headers.get("retry-after") or "").strip()
    if not value:
        return None
    try:
        secs = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            when = None
        if when is None:
            log.debug("ignoring unparseable Retry-After %r", value[:80])
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT
            when = when.replace(tzinfo=datetime.timezone.utc)
        secs = when.timestamp() - time.time()
    if math.isnan(secs):
        return None
    return max(0.0, secs)


def _server_message(resp: httpx.Response) -> str:
    """The error text of an error reply (OpenAI/vLLM ``{"error": {"message": ...}}``, FastAPI
    ``{"detail": ...}``, ``{"message": ...}``), else the start of the body."""
    try:
        payload = resp.json()
    except ValueError:
        payload = None
    msg = None
    if isinstance(payload, dict):
        err = payload.get("error")
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail")
        elif isinstance(err, str):
            msg = err
        msg = msg or payload.get("message") or payload.get("detail")
    text = str(msg) if msg else resp.text
    return " ".join(text.split())[:400] or "(empty body)"


def _content(payload) -> str:
    """Text of the first choice, or ValueError for anything not shaped like a chat reply."""
    choice = payload["choices"][0]
    content = choice["message"]["content"]
    if isinstance(content, list):  # some servers return content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str) or not content.strip():
        raise ValueError("empty content")
    return content.strip()


class Endpoint:
    """One server of a client: its connection pools, requests in flight (``outstanding``) and
    health. A failed endpoint is out until ``down_until``, then one probe request tests it."""

    PROBE_FIRST_S, PROBE_MAX_S = 1.0, 30.0

    def __init__(self, base_url: str, max_concurrent: int, make_client):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.base_url = redact(base_url.rstrip("/"))  # for messages: never a secret
        self.sem = asyncio.Semaphore(max_concurrent)
        # httpcore scans its whole pool on every request (O(connections)); several small
        # pools used round-robin keep the per-request cost flat at high concurrency.
        self.clients = [make_client() for _ in range(max(1, -(-max_concurrent // 8)))]
        self.next = self.outstanding = self.failures = 0
        self.down_until = 0.0  # 0 = up
        self.probing = False
        self.stats = {"requests": 0, "failures": 0, "taken_out": 0}

    def client(self) -> httpx.AsyncClient:
        self.next += 1
        return self.clients[self.next % len(self.clients)]

    def failed(self, why: str) -> None:
        if self.down_until > time.monotonic():  # already out (its other requests failing too)
            return
        self.failures += 1
        if not self.down_until:
            self.stats["taken_out"] += 1
            log.warning("endpoint %s taken out after %s; probed again later", self.base_url,
                        redact(why)[:200])
        self.down_until = time.monotonic() + min(self.PROBE_MAX_S,
                                                 self.PROBE_FIRST_S * 2 ** (self.failures - 1))

    def succeeded(self) -> None:
        if self.down_until:
            log.info("endpoint %s answers again: back in rotation", self.base_url)
        self.failures, self.down_until = 0, 0.0


class OpenAIChatClient:
    """Async chat-completions client with bounded concurrency, timeouts and retries, over one
    or several endpoints (same model behind each): a request goes to the endpoint with the
    fewest requests outstanding; an endpoint whose request fails at the connection level,
    times out or answers 5xx is taken out and probed again later (1 s, doubling to 30 s), and
    the request is retried on another one at once."""

    def __init__(self, base_url: str | list[str], model: str, api_key: str | None = None,
                 max_concurrent_requests: int = 32, timeout_s: float = 120.0,
                 max_retries: int = 5, backoff_base_s: float = 0.5, backoff_max_s: float = 30.0,
                 temperature: float = 0.2, seed: int | None = 0):
        """``max_concurrent_requests`` bounds the requests in flight per endpoint."""
        protect_http_logs()
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        if not urls:
            raise ValueError("OpenAIChatClient needs at least one base_url")
        self.model = model
        self.temperature, self.seed = temperature, seed
        self.max_retries = max_retries
        self.backoff_base_s, self.backoff_max_s = backoff_base_s, backoff_max_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        ssl_ctx = ssl.create_default_context(cafile=certifi.where())  # built once, shared

        def make_client():
            return httpx.AsyncClient(
                verify=ssl_ctx, headers=headers,
                timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 30.0)),
                limits=httpx.Limits(max_connections=8, max_keepalive_connections=8))

        self.endpoints = [Endpoint(u, max_concurrent_requests, make_client) for u in urls]
        self.url, self.base_url = self.endpoints[0].url, self.endpoints[0].base_url
        self.stats = {"requests": 0, "retries": 0, "failures": 0}

    def pick(self) -> Endpoint:
        """Least-outstanding endpoint that is up; else one due for a probe; else the one that
        comes back soonest (it may have recovered: the request is its probe)."""
        now = time.monotonic()
        for e in self.endpoints:  # one probe at a time per taken-out endpoint
            if e.down_until and e.down_until <= now and not e.probing:
                e.probing = True
                return e
        up = [e for e in self.endpoints if not e.down_until]
        if not up:
            return min(self.endpoints, key=lambda e: e.down_until)
        return min(up, key=lambda e: e.outstanding)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.backoff_max_s)
        base = min(self.backoff_max_s, self.backoff_base_s * 2 ** attempt)
        return base * random.uniform(0.5, 1.0) + random.uniform(0, 0.1 * self.backoff_base_s)

    async def _post(self, ep: Endpoint, body: dict) -> httpx.Response:
        ep.outstanding += 1
        try:
            async with ep.sem:
                self.stats["requests"] += 1
                ep.stats["requests"] += 1
                return await ep.client().post(ep.url, json=body)
        finally:
            ep.outstanding -= 1
            ep.probing = False

    async def chat(self, messages: list[dict], max_tokens: int, model: str | None = None) -> Reply:
        body = {"model": model or self.model, "messages": messages, "max_tokens": max_tokens,
                "temperature": self.temperature}
        if self.seed is not None:
            body["seed"] = self.seed
        t0 = time.perf_counter()
        last, attempt = "no attempt", -1
        while attempt < self.max_retries:
            attempt += 1
            retry_after, ep, down = None, self.pick(), False
            try:
                resp = await self._post(ep, body)
                if resp.status_code == 200:
                    try:
                        text = _content(resp.json())
                        ep.succeeded()
                        return Reply(text, attempt + 1, time.perf_counter() - t0)
                    except (ValueError, KeyError, IndexError, TypeError) as err:
                        last = f"malformed reply ({type(err).__name__}: {err}): {resp.text[:200]!r}"
                elif resp.status_code in RETRY_STATUS:
                    last = f"HTTP {resp.status_code}: {_server_message(resp)[:200]}"
                    retry_after = _retry_after(resp)
                    down = resp.status_code >= 500  # 429/408/409/425: busy, not broken
                else:
                    self._refuse(ep, resp, body["model"], attempt + 1)
            except httpx.TimeoutException as err:
                last, down = f"timeout ({type(err).__name__})", True
            except httpx.TransportError as err:
                last, down = f"connection error ({type(err).__name__}: {err})", True
            if down:
                ep.failed(last)
                gate = gate_for(ep.base_url)
                if gate is not None and await gate.restarted():
                    # a managed server died and came back: this try does not count
                    log.info("%s was restarted; request retried (was %s)", ep.base_url, last)
                    attempt -= 1
                    ep.succeeded()
                    continue
            if attempt < self.max_retries:
                self.stats["retries"] += 1
                elsewhere = down and any(not e.down_until for e in self.endpoints)
                delay = 0.0 if elsewhere else self._delay(attempt, retry_after)
                log.debug("retrying (was %s) in %.2fs after %s", ep.base_url, delay, last)
                await asyncio.sleep(delay)
        self.stats["failures"] += 1
        raise AgentError(f"{last} (gave up after {self.max_retries + 1} attempts)",
                         attempts=self.max_retries + 1)

    def _refuse(self, ep: Endpoint, resp: httpx.Response, model: str, attempts: int):
        """A non-retryable reply: FatalRequestError when every item would get it, else
        AgentError (this item fails with the server's message, the run goes on)."""
        code, msg = resp.status_code, _server_message(resp)
        where = f"the server at {ep.base_url}"
        if code in AUTH_STATUS:
            raise FatalRequestError(
                f"{where} refused the request for model {model!r} (HTTP {code}: {msg}); set the "
                "API key in the environment variable named by captioning.openai.api_key_env "
                "(or captioning.agents.<agent>.api_key_env; credentials never go into base_url)")
        if _MODEL_MISSING.search(msg) or (code == 404 and "model" in msg.lower()):
            raise FatalRequestError(
                f"{where} does not serve model {model!r} (HTTP {code}: {msg}); set "
                f"captioning.openai.model / summarize_model (or captioning.agents.<agent>.model) "
                f"to a model it serves (GET {ep.base_url}/models lists them)")
        if code == 404 or not 400 <= code < 500:
            raise FatalRequestError(
                f"{redact(ep.url)} answered HTTP {code} for model {model!r}: {msg}; check "
                "captioning.openai.base_url / captioning.agents.<agent>.endpoint (the part "
                "before /chat/completions, e.g. http://host:8000/v1)")
        ep.stats["failures"] += 1
        self.stats["failures"] += 1
        raise AgentError(f"HTTP {code}: {msg}", attempts=attempts)

    async def aclose(self) -> None:
        for ep in self.endpoints:
            for c in ep.clients:
                await c.aclose()


def _api_key(env_name: str | None) -> str | None:
    return os.environ.get(env_name) if env_name else None


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(self, cfg, client: OpenAIChatClient | None = None,
                 endpoints: list[str] | tuple[str, ...] | None = None):
        """``cfg``: :class:`pathgen.config.captioning.OpenAIBackendConfig`; ``endpoints``:
        several server roots serving ``cfg.model`` (default: ``cfg.base_url``)."""
        self.cfg = cfg
        self.model = cfg.model
        self.client = client or OpenAIChatClient(
            list(endpoints or [cfg.base_url]), cfg.model, _api_key(cfg.api_key_env),
            cfg.max_concurrent_requests, cfg.timeout_s, cfg.max_retries, cfg.backoff_base_s,
            cfg.backoff_max_s, cfg.temperature, cfg.seed)

    def agent_models(self) -> dict[str, dict]:
        eps = [e.base_url for e in self.client.endpoints]
        return {role: {"backend": self.name, "endpoints": eps,
                       "model": (self.cfg.summarize_model or self.model) if role == "summarize"
                       else self.model} for role in AGENT_ROLES}

    async def _image_msg(self, item: PatchItem, prompt: str) -> list[dict]:
        try:
            url = await asyncio.to_thread(image_data_url, item.path, self.cfg.image_format)
        except (OSError, ValueError, Image.DecompressionBombError) as err:  # this item only
            raise AgentError(f"cannot encode {item.path} ({type(err).__name__}: {err})") from err
        return [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": url}},
            {"type": "text", "text": prompt}]}]

    async def describe(self, item: PatchItem, prompt: str) -> Reply:
        return await self.client.chat(await self._image_msg(item, prompt), self.cfg.max_tokens)

    async def revise(self, item: PatchItem, description: str, prompt: str) -> Reply:
        return await self.client.chat(await self._image_msg(item, prompt), self.cfg.max_tokens)

    async def summarize(self, description: str, prompt: str, budget: TokenBudget) -> Reply:
        return await self.client.chat([{"role": "user", "content": prompt}],
                                      self.cfg.summary_max_tokens, self.cfg.summarize_model)

    async def aclose(self) -> None:
        await self.client.aclose()
