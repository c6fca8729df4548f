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
from ..items import PatchItem, Reply
from .base import Backend

log = logging.getLogger(__name__)


def _resolve_device_dtype(device: str, dtype: str):
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    return device, getattr(torch, dtype)


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
        self.batches = 0

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
        try:
            texts = await asyncio.to_thread(self.gen.generate, batch)
            self.batches += 1
            for r, t in zip(batch, texts):
                if not r.future.done():
                    r.future.set_result(t)
        except Exception as err:  # a failing batch fails its requests, not the loop
            for r in batch:
                if not r.future.done():
                    r.future.set_exception(err)

    async def aclose(self):
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


class TransformersBackend(Backend):
    name = "transformers"

    def __init__(self, cfg):
        """``cfg``: TransformersBackendConfig. Weights come from the HF cache / hub or a path."""
        try:
            from transformers import (AutoModelForCausalLM, AutoModelForImageTextToText,
                                      AutoProcessor, AutoTokenizer)
        except ImportError as err:  # pragma: no cover - transformers is a core dependency
            raise ImportError("the transformers backend needs `pip install transformers`") from err
        self.cfg = cfg
        self.model = cfg.model
        device, dtype = _resolve_device_dtype(cfg.device, cfg.dtype)
        kw = dict(trust_remote_code=cfg.trust_remote_code)
        try:
            processor = AutoProcessor.from_pretrained(cfg.model, **kw)
            vlm = AutoModelForImageTextToText.from_pretrained(cfg.model, dtype=dtype, **kw)
        except OSError as err:
            raise OSError(f"captioning.transformers.model {cfg.model!r} could not be loaded "
                          f"({err}); give a local folder or pre-download it into the HF cache "
                          "(HF_HOME) on a machine with internet") from err
        vlm.to(device).eval()
        self.vision = _Batcher(_Generator(vlm, processor, device, True, cfg.do_sample),
                               cfg.batch_size, cfg.batch_wait_ms)
        if cfg.text_model:
            tok = AutoTokenizer.from_pretrained(cfg.text_model, **kw)
            lm = AutoModelForCausalLM.from_pretrained(cfg.text_model, dtype=dtype, **kw)
            lm.to(device).eval()
            self.text = _Batcher(_Generator(lm, tok, device, False, cfg.do_sample),
                                 cfg.batch_size, cfg.batch_wait_ms)
        else:
            self.text = self.vision

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
        await self.vision.aclose()
        if self.text is not self.vision:
            await self.text.aclose()


def text_chat(cfg, max_new_tokens: int | None = None):
    """A blocking ``prompt -> reply`` function over a locally loaded model (instruction data,
    report findings). The model is loaded once; calls run on one private event loop."""
    backend = TransformersBackend(cfg)
    loop = asyncio.new_event_loop()
    limit = max_new_tokens or cfg.max_new_tokens

    def chat(prompt: str) -> str:
        return loop.run_until_complete(backend.chat(prompt, limit))

    return chat
