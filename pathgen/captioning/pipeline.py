"""The three agents on one patch, and a pipelined producer/consumer over many patches.

``caption_item`` runs describe -> revise -> summarize (re-ask tighter when over budget, then
truncate at a sentence boundary). ``run_items`` keeps ``concurrency`` items in flight: a
producer feeds a bounded queue from a (possibly lazy, huge) iterator, workers take the next
item as soon as they finish one, and a writer persists each record as it completes. Memory
is bounded by the queue size, not by the number of items; a server always has work.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterable

from .backends.base import Backend
from .budget import TokenBudget
from .clean import clean_field, clean_model_text
from .items import AgentError, PatchItem
from .prompts import Templates

log = logging.getLogger(__name__)


@dataclass
class AgentSettings:
    templates: Templates
    budget: TokenBudget
    prompt_hash: str
    summary_retries: int = 1
    provenance: dict | None = None


def clean_caption(text: str) -> str:
    """A summarize answer as plain prose (pathgen.captioning.clean: no reasoning block, chat
    preamble, label or markdown)."""
    return clean_model_text(text)


def edit_ratio(a: str, b: str) -> float:
    """1 - difflib similarity over words (0 = unchanged, 1 = rewritten)."""
    return round(1.0 - difflib.SequenceMatcher(None, a.split(), b.split(), autojunk=False).ratio(), 4)


def base_record(item: PatchItem, backend: Backend, s: AgentSettings) -> dict:
    return {"slide_id": item.slide_id, "x": item.x, "y": item.y, "level": item.level,
            "size": item.size, "mpp": item.mpp, "image": item.image, "backend": backend.name,
            "model": backend.model, "prompt_hash": s.prompt_hash, "describe": None,
            "revise": None, "caption": None, "revise_changed": None, "revise_edit_ratio": None,
            "n_tokens": None, "timings": {}, "attempts": {}, "status": "ok", "error": None,
            "accepted": None, "reject_reasons": [],
            # which backend/model wrote each stage (a model per agent: captioning.agents)
            "provenance": {**(s.provenance or {}), "agents": backend.agent_models()}}


async def _agents(item: PatchItem, backend: Backend, s: AgentSettings, rec: dict,
                  stages: list[str]) -> None:
    """describe -> revise -> summarize into ``rec``; every answer cleaned to plain prose
    (pathgen.captioning.clean) before it is stored and passed on. An answer with nothing
    usable left (a reasoning block only) ends the item: caption "", rejected by the filters
    (``reasoning_only`` / ``empty``) with the raw answer in ``rec['raw']``."""
    stages.append("describe")
    fu = f"{item.field_um:.0f}" if item.field_um else "an unknown number of"
    mpp = f"{item.mpp:.3g}" if item.mpp else "unknown"
    r = await backend.describe(item, s.templates.render("describe", field_um=fu, mpp=mpp))
    rec["describe"] = clean_field(rec, "describe", r.text)
    rec["timings"]["describe"], rec["attempts"]["describe"] = round(r.seconds, 3), r.attempts
    if not rec["describe"]:
        rec.update(revise="", caption="", n_tokens=0, revise_changed=False, revise_edit_ratio=0.0)
        return

    stages.append("revise")
    r = await backend.revise(item, rec["describe"],
                             s.templates.render("revise", description=rec["describe"]))
    rec["revise"] = clean_field(rec, "revise", r.text)
    rec["timings"]["revise"], rec["attempts"]["revise"] = round(r.seconds, 3), r.attempts
    rec["revise_edit_ratio"] = edit_ratio(rec["describe"], rec["revise"])
    rec["revise_changed"] = rec["describe"] != rec["revise"]
    if not rec["revise"]:
        rec.update(caption="", n_tokens=0)
        return

    stages.append("summarize")
    b = s.budget
    r = await backend.summarize(rec["revise"], s.templates.render(
        "summarize", description=rec["revise"], budget=b.max_tokens, max_words=b.max_words()), b)
    caption, secs, tries = clean_field(rec, "caption", r.text), r.seconds, r.attempts
    reasks = 0
    while caption and not b.fits(caption) and reasks < s.summary_retries:
        reasks += 1
        words = max(5, int(b.max_words() * 0.75 ** reasks))
        r = await backend.summarize(rec["revise"], s.templates.render(
            "summarize_tight", caption=caption, n_tokens=b.count(caption),
            description=rec["revise"], budget=b.max_tokens, max_words=words), b)
        caption, secs, tries = clean_field(rec, "caption", r.text), secs + r.seconds, tries + r.attempts
    n_before = b.count(caption) if caption else 0
    truncated = n_before > b.max_tokens
    if truncated:  # the model overran even the tight re-ask: cut at a sentence boundary
        caption = b.truncate(caption)
        rec["provenance"]["tokens_before_truncation"] = n_before
    rec.update(caption=caption, n_tokens=b.count(caption) if caption else 0)
    rec["timings"]["summarize"], rec["attempts"]["summarize"] = round(secs, 3), tries
    rec["provenance"].update(summary_reasks=reasks, truncated=truncated)


async def caption_item(item: PatchItem, backend: Backend, s: AgentSettings) -> dict:
    rec = base_record(item, backend, s)
    t_all = time.perf_counter()
    stages: list[str] = []
    try:
        await _agents(item, backend, s, rec, stages)
    except AgentError as err:
        rec.update(status="failed", error=f"{stages[-1]}: {err}")
        rec["attempts"][stages[-1]] = err.attempts
    except OSError as err:  # unreadable/corrupt patch image: this item fails, the run goes on
        rec.update(status="failed", error=f"{stages[-1]}: {type(err).__name__}: {err}")
    rec["timings"]["total"] = round(time.perf_counter() - t_all, 3)
    return rec


async def _until_failure(tasks: list[asyncio.Task], writer: asyncio.Task) -> BaseException | None:
    """Wait until every task in ``tasks`` is done (-> None) or one of them raises (-> its
    exception). The writer raising re-raises at once: nothing can be persisted any more."""
    pending = set(tasks) | {writer}
    while True:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if writer in done and not writer.cancelled() and writer.exception() is not None:
            raise writer.exception()
        for t in done:
            if t is not writer and not t.cancelled() and t.exception() is not None:
                return t.exception()
        if all(t.done() for t in tasks):
            return None


_STOP = object()  # end of a queue


class _ItemRun:
    """The queues of one :func:`run_items` call: producer -> ``queue`` -> workers ->
    ``results`` -> writer."""

    def __init__(self, backend: Backend, s: AgentSettings, sink: Callable[[dict], None],
                 on_record, concurrency: int, queue_size: int | None):
        self.backend, self.s, self.sink, self.on_record = backend, s, sink, on_record
        self.concurrency = concurrency
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=queue_size or 2 * concurrency)
        self.results: asyncio.Queue = asyncio.Queue(maxsize=2 * concurrency)
        self.done = 0
        self.stranded: list[dict] = []  # finished records of workers stopped before handing them over

    async def produce(self, items: Iterable[PatchItem]) -> None:
        for item in items:  # lazy: pulls the next item only when there is room
            await self.queue.put(item)
        for _ in range(self.concurrency):
            await self.queue.put(_STOP)

    async def work(self) -> None:
        while True:
            item = await self.queue.get()
            if item is _STOP:
                return
            rec = await caption_item(item, self.backend, self.s)
            try:
                await self.results.put(rec)
            except asyncio.CancelledError:  # stopped while the queue was full: still write it
                self.stranded.append(rec)
                raise

    async def write(self) -> None:
        while True:
            rec = await self.results.get()
            if rec is _STOP:
                return
            await asyncio.to_thread(self.sink, rec)
            self.done += 1
            if self.on_record is not None:
                res = self.on_record(rec)
                if asyncio.iscoroutine(res):
                    await res

    async def finish(self) -> None:
        """After every finished record (the stranded ones too): stop the writer."""
        for rec in self.stranded:
            await self.results.put(rec)
        await self.results.put(_STOP)


async def _cancel(tasks: list[asyncio.Task]) -> None:
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _drain(run: _ItemRun, tasks: list[asyncio.Task], writer: asyncio.Task,
                 extra: list[asyncio.Task]) -> None:
    """Wait for the producer and workers (stopping them all at the first failure), write
    every finished record, then raise that failure if there was one."""
    failure = await _until_failure(tasks, writer)
    if failure is not None:
        await _cancel(tasks)
        log.warning("captioning stops (%s, raised below); writing the %d finished "
                    "record(s) first", type(failure).__name__, run.results.qsize() + len(run.stranded))
    extra.append(asyncio.create_task(run.finish()))
    await _until_failure(extra, writer)
    await writer
    if failure is not None:
        raise failure


async def run_items(items: Iterable[PatchItem], backend: Backend, s: AgentSettings,
                    sink: Callable[[dict], None], concurrency: int = 32,
                    queue_size: int | None = None,
                    on_record: Callable[[dict], Awaitable[None] | None] | None = None) -> int:
    """Caption every item with ``concurrency`` in flight; call ``sink(record)`` (in a worker
    thread, e.g. an fsyncing append) for each as it completes. Returns the count written.

    Failures stop the run within moments and are raised, never swallowed: if the writer
    (``sink``/``on_record``) raises, everything stops and that exception is raised; if the
    producer or a worker raises (e.g. FatalRequestError), the others stop, every record
    already finished is still written, then that exception is raised."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    run = _ItemRun(backend, s, sink, on_record, concurrency, queue_size)
    writer_task = asyncio.create_task(run.write())
    tasks = [asyncio.create_task(run.produce(items))] + [asyncio.create_task(run.work())
                                                         for _ in range(concurrency)]
    extra: list[asyncio.Task] = []  # the finishing task, once started
    try:
        await _drain(run, tasks, writer_task, extra)
    except BaseException as err:
        if writer_task.done() and not writer_task.cancelled() and writer_task.exception() is err:
            log.error("captioning stops: a record could not be written (%s, raised below)",
                      type(err).__name__)
        await _cancel(tasks + extra + [writer_task])
        raise
    return run.done
