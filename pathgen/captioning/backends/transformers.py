"""Local Hugging Face backend: an image-text-to-text model (llava-hf, Qwen2-VL style; loaded
with AutoProcessor + AutoModelForImageTextToText, prompts built with the processor's chat
template) for describe/revise, and optionally a text-only causal LM for summarize.

Concurrent agent calls from the pipeline are gathered into batches (up to ``batch_size``,
waiting at most ``batch_wait_ms``) and run through one ``generate`` at a time in a worker
thread, so the GPU sees full batches while the event loop keeps feeding it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from ..budget import TokenBudget
from ..items import AgentError, PatchItem, Reply
from .base import AGENT_ROLES, Backend

log = logging.getLogger(__name__)


def resolve_device_dtype(device: str, dtype: str):
    """'auto' -> cuda when available (bfloat16 there, float32 on CPU); also used by agents/lora."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    return device, getattr(torch, dtype)


def is_oom(err: BaseException) -> bool:
    """CUDA/MPS/CPU out-of-memory, as torch raises it (torch.OutOfMemoryError, or a
    RuntimeError whose text says so, e.g. older torch or other allocators)."""
    try:
        import torch

        if isinstance(err, torch.OutOfMemoryError):
            return True
    except (ImportError, AttributeError):  # pragma: no cover - torch is a core dependency
        pass
    return isinstance(err, (RuntimeError, MemoryError)) and (
        isinstance(err, MemoryError) or "out of memory" in str(err).lower())


def _free_cuda_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@dataclass
class _Request:
    messages: list
    image: object | None
    max_new_tokens: int
    future: asyncio.Future = field(default=None)


class _Generator:
    """One model + its processor/tokenizer; turns a list of chat messages into replies."""

    def __init__(self, model, processor, device, multimodal: bool, do_sample: bool):
        self.model, self.processor, self.device = model, processor, device
        self.multimodal, self.do_sample = multimodal, do_sample
        tok = getattr(processor, "tokenizer", processor)
        tok.padding_side = "left"  # batched decoder-only generation needs left padding
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        self.tokenizer = tok

    def generate(self, batch: list[_Request]) -> list[str]:
        import torch

        texts = [self.processor.apply_chat_template(r.messages, add_generation_prompt=True,
                                                    tokenize=False) for r in batch]
        if self.multimodal and batch[0].image is not None:
            inputs = self.processor(images=[r.image for r in batch], text=texts, padding=True,
                                    return_tensors="pt")
        elif self.multimodal:
            inputs = self.processor(text=texts, padding=True, return_tensors="pt")
        else:
            inputs = self.tokenizer(texts, padding=True, return_tensors="pt",
                                    add_special_tokens=False)
        inputs = inputs.to(self.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=max(r.max_new_tokens for r in batch),
                                      do_sample=self.do_sample,
                                      pad_token_id=self.tokenizer.pad_token_id)
        new = out[:, inputs["input_ids"].shape[1]:]
        return [t.strip() for t in self.tokenizer.batch_decode(new, skip_special_tokens=True)]


class _Batcher:
    """Collects concurrent requests for one generator and runs them in batches."""

    def __init__(self, gen: _Generator, batch_size: int, wait_ms: float):
        self.gen, self.batch_size, self.wait_s = gen, batch_size, wait_ms / 1000
        self.queue: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None
        self.batches = self.split_batches = self.failed_items = 0

    async def submit(self, req: _Request) -> str:
        if self.task is None or self.task.done():
            self.queue = asyncio.Queue()
            self.task = asyncio.create_task(self._loop())
        req.future = asyncio.get_running_loop().create_future()
        await self.queue.put(req)
        return await req.future

    async def _loop(self):
        while True:
            batch = [await self.queue.get()]
            deadline = time.perf_counter() + self.wait_s
            while len(batch) < self.batch_size:
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(),
                                                        max(0.0, deadline - time.perf_counter())))
                except asyncio.TimeoutError:
                    break
            # Image and text-only prompts cannot share one processor call: split them.
            for group in ([r for r in batch if r.image is not None],
                          [r for r in batch if r.image is None]):
                if group:
                    await self._run(group)

    async def _run(self, batch: list[_Request]) -> None:
        """Generate for ``batch``; a batch that raises (OOM included) is split in halves and
        retried, so one bad item or an oversized batch never fails the others. An item that
        fails on its own gets an AgentError with the reason (recorded, the run goes on)."""
        try:
            texts = await asyncio.to_thread(self.gen.generate, batch)
        except Exception as err:
            oom = is_oom(err)
            if oom:
                _free_cuda_cache()
            if len(batch) == 1:
                self.failed_items += 1
                what = "out of memory" if oom else "generate failed"
                if not batch[0].future.done():
                    batch[0].future.set_exception(AgentError(
                        f"{what} on this item alone ({type(err).__name__}: {str(err)[:300]})"))
                return
            self.split_batches += 1
            if oom and len(batch) <= self.batch_size:  # later batches start below this size
                self.batch_size = max(1, len(batch) // 2)
            log.warning("a batch of %d raised %s; split and retried%s", len(batch),
                        type(err).__name__, f" (batch_size now {self.batch_size})" if oom else "")
            half = len(batch) // 2
            await self._run(batch[:half])
            await self._run(batch[half:])
            return
        self.batches += 1
        for r, t in zip(batch, texts):
            if not r.future.done():
                r.future.set_result(t)

    async def aclose(self):
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


# Weights loaded in this process, shared by the backends that make_backend builds: the agents
# of one run, and the slides of one chunk job (each slide builds its backends anew; a local
# model is loaded once). Keyed by the folder's config.json mtime too, so a re-exported model
# at the same path is loaded again.
PROCESS_WEIGHTS: dict = {}


def _load(kind: str, path: str, device: str, dtype, trust: bool, cache: dict | None):
    """(model, processor-or-tokenizer) for ``kind`` 'vlm' or 'lm'; ``cache`` shares weights
    between agents that name the same model (describe and revise, usually)."""
    from pathlib import Path

    from transformers import (AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor,
                              AutoTokenizer)

    stamp = Path(path, "config.json")
    key = (kind, path, device, str(dtype), trust, stamp.stat().st_mtime_ns if stamp.is_file() else None)
    if cache is not None and key in cache:
        return cache[key]
    kw = dict(trust_remote_code=trust)
    key_name = "model" if kind == "vlm" else "text_model"
    try:
        if kind == "vlm":
            proc = AutoProcessor.from_pretrained(path, **kw)
            model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype, **kw)
        else:
            proc = AutoTokenizer.from_pretrained(path, **kw)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **kw)
    except OSError as err:
        raise OSError(f"captioning.transformers.{key_name} (or captioning.agents.<agent>.model) "
                      f"{path!r} could not be loaded ({err}); give a local folder or pre-download "
                      "it into the HF cache (HF_HOME) on a machine with internet") from err
    model.to(device).eval()
    if cache is not None:
        cache[key] = (model, proc)
    return model, proc


class TransformersBackend(Backend):
    name = "transformers"

    def __init__(self, cfg, load_vision: bool = True, cache: dict | None = None):
        """``cfg``: TransformersBackendConfig. Weights come from the HF cache / hub or a path.
        ``load_vision=False`` (a summarize-only agent with its own ``text_model``) skips the
        VLM; ``cache``: a dict shared by the backends of one run so agents naming the same
        model share its weights."""
        self.cfg = cfg
        self.model = cfg.model
        device, dtype = resolve_device_dtype(cfg.device, cfg.dtype)
        trust = cfg.trust_remote_code
        self.vision = self.text = None
        if load_vision or not cfg.text_model:
            vlm, processor = _load("vlm", cfg.model, device, dtype, trust, cache)
            self.vision = _Batcher(_Generator(vlm, processor, device, True, cfg.do_sample),
                                   cfg.batch_size, cfg.batch_wait_ms)
        if cfg.text_model:
            lm, tok = _load("lm", cfg.text_model, device, dtype, trust, cache)
            self.text = _Batcher(_Generator(lm, tok, device, False, cfg.do_sample),
                                 cfg.batch_size, cfg.batch_wait_ms)
        else:
            self.text = self.vision

    def agent_models(self) -> dict[str, dict]:
        return {role: {"backend": self.name, "model": (self.cfg.text_model or self.model)
                       if role == "summarize" else self.model} for role in AGENT_ROLES}

    @staticmethod
    def _image(item: PatchItem):
        from PIL import Image

        with Image.open(item.path) as im:
            return im.convert("RGB")

    async def _vision(self, item: PatchItem, prompt: str) -> Reply:
        t0 = time.perf_counter()
        image = await asyncio.to_thread(self._image, item)
        messages = [{"role": "user", "content": [{"type": "image"},
                                                 {"type": "text", "text": prompt}]}]
        text = await self.vision.submit(_Request(messages, image, self.cfg.max_new_tokens))
        return Reply(text, 1, time.perf_counter() - t0)

    async def describe(self, item: PatchItem, prompt: str) -> Reply:
        return await self._vision(item, prompt)

    async def revise(self, item: PatchItem, description: str, prompt: str) -> Reply:
        return await self._vision(item, prompt)

    def _text_messages(self, prompt: str) -> list[dict]:
        if self.text is self.vision:  # text-only turn through the VLM's chat template
            return [{"role": "user", "content": [{"type": "text", "text": prompt}]}]
        return [{"role": "user", "content": prompt}]

    async def chat(self, prompt: str, max_new_tokens: int) -> str:
        """One text-only turn (used by summarize and by text-only callers)."""
        return await self.text.submit(_Request(self._text_messages(prompt), None, max_new_tokens))

    async def summarize(self, description: str, prompt: str, budget: TokenBudget) -> Reply:
        t0 = time.perf_counter()
        text = await self.chat(prompt, self.cfg.summary_max_new_tokens)
        return Reply(text, 1, time.perf_counter() - t0)

    async def aclose(self) -> None:
        for b in {id(b): b for b in (self.vision, self.text) if b is not None}.values():
            await b.aclose()
