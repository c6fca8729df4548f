"""Captioning reliability ("nothing lost, nothing let in"): every fault surfaces within
seconds as one clear error, nothing finished is lost, a rerun resumes. Faults are injected by
a local OpenAI-compatible server on 127.0.0.1 (pathgen_testkit.mock_chat_server), by a store
whose writes fail with ENOSPC, and (as root) by a tiny / read-only tmpfs."""

from __future__ import annotations

import asyncio
import email.utils
import errno
import json
import logging
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from pathgen.captioning import pipeline
from pathgen.captioning.backends.base import Backend
from pathgen.captioning.backends.openai import (FatalRequestError, OpenAIChatClient, RedactSecrets,
                                                _retry_after, image_data_url, protect_http_logs,
                                                redact)
from pathgen.captioning.items import AgentError, PatchItem, Reply
from pathgen_testkit.mock_chat_server import MockChatServer
from pathgen.captioning.stage import (CaptioningIncomplete, CaptioningWriteError, agent_settings,
                                      caption_slide)
from pathgen.captioning.store import PartialStore
from pathgen.config import ConfigError, validate_config
from pathgen.config.captioning import CaptioningConfig
from pathgen_testkit.patches import write_selection


pytestmark = pytest.mark.timeout(60)
SECRET = "hunter2-not-a-real-key"


@pytest.fixture(autouse=True, scope="module")
def _warm_tokenizer():
    """Load the CLIP tokenizer once (seconds on a cold cache) so timings measure the faults."""
    from pathgen.captioning.budget import TokenBudget

    TokenBudget().count("warm up")


def _cfg(url, **kw) -> CaptioningConfig:
    openai = dict(base_url=url, model="m", max_retries=1, backoff_base_s=0.01,
                  backoff_max_s=0.2, timeout_s=5.0, api_key_env="PATHGEN_TEST_NO_SUCH_KEY")
    openai.update(kw.pop("openai", {}))
    args = dict(backend="openai", concurrency=2, max_failed_fraction=0.0, openai=openai)
    args.update(kw)
    return CaptioningConfig(**args)


def _lines(path: Path) -> list[dict]:
    """Every line of ``path``, each of which must be a complete JSON record."""
    raw = path.read_bytes()
    assert not raw or raw.endswith(b"\n"), "torn record at the end of the partial file"
    return [json.loads(x) for x in raw.decode().splitlines() if x.strip()]


# --- 1. output cannot be written -------------------------------------------------------------

def _enospc_after(monkeypatch, n_ok: int, torn: bool = True):
    """From the (n_ok+1)-th record on, a write puts half the line on disk, then ENOSPC."""
    real = PartialStore._write_all
    calls = {"n": 0, "t_fault": None}

    def write_all(fd, data):
        if data == b"\n":
            return real(fd, data)
        calls["n"] += 1
        if calls["n"] > n_ok:
            calls["t_fault"] = calls["t_fault"] or time.perf_counter()
            if torn:
                real(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    monkeypatch.setattr(PartialStore, "_write_all", staticmethod(write_all))
    return calls


@pytest.mark.parametrize("how", ["torn_write", "append_raises"])
def test_disk_full_stops_within_seconds_and_resumes(tmp_path, monkeypatch, how):
    csv_path, patches = write_selection(tmp_path, n=16)
    out = tmp_path / "cap" / "slide_a.jsonl"
    partial = tmp_path / "cap" / "slide_a.partial.jsonl"
    n_ok = 3
    if how == "torn_write":
        seen = _enospc_after(monkeypatch, n_ok)
    else:  # the store's append itself raises a bare OSError after n_ok records
        real_append, seen = PartialStore.append, {"n": 0, "t_fault": None}

        def append(self, rec):
            seen["n"] += 1
            if seen["n"] > n_ok:
                seen["t_fault"] = seen["t_fault"] or time.perf_counter()
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
            return real_append(self, rec)

        monkeypatch.setattr(PartialStore, "append", append)
    with MockChatServer(latency_s=0.01) as srv:
        cfg = _cfg(srv.base_url)
        t0 = time.perf_counter()
        with pytest.raises(CaptioningWriteError) as exc:
            caption_slide(csv_path, patches, out, cfg, target_mpp=0.5)
        t1 = time.perf_counter()
        elapsed, surfaced = t1 - t0, t1 - seen["t_fault"]
        err = exc.value
        assert surfaced < 5, f"took {surfaced:.1f}s from the fault to the error"
        assert err.errno == errno.ENOSPC and err.path == partial
        assert str(partial) in str(err) and "ENOSPC" in str(err)
        recs = _lines(partial)  # no torn record
        assert len(recs) == n_ok and all(r["status"] == "ok" for r in recs)
        assert not out.exists()
        print(f"\n[{how}] ENOSPC -> {type(err).__name__} {surfaced:.3f}s after the fault "
              f"(run {elapsed:.2f}s): {err}")

        monkeypatch.undo()  # disk has room again: the rerun resumes, nothing redone
        n_before = srv.settle()  # requests of the stopped run still on the wire
        summary = caption_slide(csv_path, patches, out, cfg, target_mpp=0.5)
        assert summary["captioned_this_run"] == 16 - n_ok
        assert len(srv.log) - n_before == 3 * (16 - n_ok)  # describe, revise, summarize each
    assert len(_lines(out)) == 16


def test_torn_tail_from_a_kill_is_cut_and_never_glued(tmp_path):
    p = tmp_path / "s.partial.jsonl"
    good = json.dumps({"x": 1, "y": 2, "status": "ok", "prompt_hash": "h"}) + "\n"
    p.write_text(good + '{"x": 3, "y": 4, "sta')
    st = PartialStore(p)  # reopen after a kill: the torn tail is cut
    assert p.read_text() == good and st.done("h") == {(1, 2)}
    with p.open("a") as fh:  # torn bytes appear after the load (a rollback that failed)
        fh.write('{"x": 3, "y": 4, "sta')
    st.append({"x": 5, "y": 6, "status": "ok", "prompt_hash": "h"})
    st.close()
    assert PartialStore(p).done("h") == {(1, 2), (5, 6)}  # appended on a fresh line, not glued


def _tmpfs(mountpoint: Path, opts: str) -> bool:
    mountpoint.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(mountpoint)],
                       capture_output=True, timeout=10)
    return r.returncode == 0


def _umount(mountpoint: Path) -> None:
    if subprocess.run(["umount", str(mountpoint)], capture_output=True, timeout=10).returncode:
        subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True, timeout=10)


@pytest.mark.parametrize("fault", ["full", "readonly"])
def test_real_tmpfs_full_or_readonly(tmp_path, fault):
    """As root: a real 16 KiB tmpfs fills up mid-slide / is read-only from the start."""
    mnt = tmp_path / "mnt"
    opts = "size=16k" if fault == "full" else "size=1m"
    if not _tmpfs(mnt, opts):
        pytest.skip("needs root and tmpfs mounts")
    try:
        csv_path, patches = write_selection(tmp_path, n=24)
        out = mnt / "slide_a.jsonl"
        partial = mnt / "slide_a.partial.jsonl"
        if fault == "readonly":
            subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True, timeout=10)
        with MockChatServer(latency_s=0.005) as srv:
            cfg = _cfg(srv.base_url)
            t0 = time.perf_counter()
            with pytest.raises(CaptioningWriteError) as exc:
                caption_slide(csv_path, patches, out, cfg, target_mpp=0.5)
            elapsed = time.perf_counter() - t0
            want = errno.ENOSPC if fault == "full" else errno.EROFS
            assert exc.value.errno == want and str(partial) in str(exc.value)
            assert elapsed < 10
            n_kept = len(_lines(partial)) if partial.exists() else 0
            assert n_kept < 24 and (fault == "readonly" or n_kept > 0)
            print(f"\n[tmpfs {fault}] -> {exc.value} ({n_kept} records kept, {elapsed:.2f}s)")
            subprocess.run(["mount", "-o", "remount,rw,size=4m", str(mnt)], check=True, timeout=10)
            summary = caption_slide(csv_path, patches, out, cfg, target_mpp=0.5)
            assert summary["captioned_this_run"] == 24 - n_kept
        assert len(_lines(out)) == 24
    finally:
        _umount(mnt)


class _ScriptedBackend(Backend):
    """Offline backend: describe sleeps, raises for the item at ``boom_x``."""
    name, model = "scripted", "scripted"

    def __init__(self, boom_x=None, exc: Exception | None = None):
        self.boom_x, self.exc = boom_x, exc or RuntimeError("backend bug")

    async def describe(self, item, prompt):
        await asyncio.sleep(0.01 + (0.3 if item.x == self.boom_x else 0))
        if item.x == self.boom_x:
            raise self.exc
        return Reply("Dense sheets of tumour cells with enlarged nuclei and scant stroma.")

    async def revise(self, item, description, prompt):
        return Reply(description)

    async def summarize(self, description, prompt, budget):
        return Reply(description)


def _items(tmp_path, n):
    return [PatchItem("s", i, 0, 0, 512, 256, f"{i}.jpg", tmp_path / f"{i}.jpg", 0.5)
            for i in range(n)]


@pytest.mark.parametrize("where", ["worker", "writer"])
def test_any_worker_or_writer_exception_surfaces_and_keeps_finished(tmp_path, monkeypatch, where):
    settings = agent_settings(CaptioningConfig())
    finished, written = [], []
    real = pipeline.caption_item

    async def tracked(item, backend, s):
        rec = await real(item, backend, s)
        finished.append((rec["x"], rec["y"]))
        return rec

    monkeypatch.setattr(pipeline, "caption_item", tracked)

    def slow_sink(rec):  # a slow disk: the results queue is full when the fault hits
        time.sleep(0.02)
        if where == "writer" and len(written) == 5:
            raise OSError(errno.EIO, "I/O error")
        written.append((rec["x"], rec["y"]))

    backend = _ScriptedBackend(boom_x=20 if where == "worker" else None)
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError if where == "worker" else OSError):
        asyncio.run(pipeline.run_items(_items(tmp_path, 200), backend, settings, slow_sink,
                                       concurrency=8))
    assert time.perf_counter() - t0 < 10
    if where == "worker":  # every record finished before the stop was still written
        assert sorted(written) == sorted(finished) and len(written) >= 20
    else:
        assert len(written) == 5


# --- 4. Retry-After in any form ------------------------------------------------------------------

@pytest.mark.parametrize("value,expect", [
    ("3", 3.0), ("0.5", 0.5), ("-4", 0.0), ("", None), ("soon", None), ("nan", None),
    ("inf", float("inf")), ("Mon, 99 Foo 2024 99:99:99 GMT", None), ("1e400", float("inf")),
    # a fixed id: the date is of the collection time, and every xdist worker must collect the same ids
    pytest.param(email.utils.formatdate(time.time() - 60, usegmt=True), 0.0, id="http-date-a-minute-ago"),
    ("Sun, 06 Nov 1994 08:49:37", 0.0),  # no zone: read as GMT
])
def test_retry_after_forms(value, expect):
    got = _retry_after(httpx.Response(429, headers={"Retry-After": value} if value else {}))
    assert got == expect


def test_retry_after_http_date_in_the_future():
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < _retry_after(httpx.Response(429, headers={"Retry-After": future})) <= 31


def test_garbage_retry_after_uses_backoff_and_run_goes_on(tmp_path):
    csv_path, patches = write_selection(tmp_path, n=3)
    out = tmp_path / "cap" / "slide_a.jsonl"
    soon = email.utils.formatdate(time.time() + 0.5, usegmt=True)
    faults = ["429:soon", "429:nan", f"429:{soon}", "429:Mon, 99 Foo", "429:-1"]
    with MockChatServer(latency_s=0.0, faults=faults) as srv:
        t0 = time.perf_counter()
        summary = caption_slide(csv_path, patches, out, _cfg(srv.base_url, concurrency=1, openai=dict(
            max_retries=5, backoff_max_s=1.5)), target_mpp=0.5)
    assert summary["n_ok"] == 3 and time.perf_counter() - t0 < 10
    assert [f for _, f in srv.log][:6] == faults + ["ok"]


# --- 5. per-item 4xx vs run-level 401/403/model-not-found ----------------------------------------

def _fault_for_image(path: Path, fault: str):
    url = image_data_url(path)

    def pick(body):
        content = body["messages"][-1]["content"]
        if isinstance(content, list) and any(
                p.get("type") == "image_url" and p["image_url"]["url"] == url for p in content):
            return fault
        return None
    return pick


def test_one_400_fails_that_item_only(tmp_path):
    csv_path, patches = write_selection(tmp_path, n=6)
    out = tmp_path / "cap" / "slide_a.jsonl"
    bad = patches / "slide_a" / "1024_1024.jpg"
    with MockChatServer(latency_s=0.01, fault_for=_fault_for_image(bad, "400")) as srv:
        with pytest.raises(CaptioningIncomplete, match="1/6 patches failed.*maximum context"):
            caption_slide(csv_path, patches, out, _cfg(srv.base_url), target_mpp=0.5)
        recs = {r["x"]: r for r in _lines(tmp_path / "cap" / "slide_a.partial.jsonl")}
        assert len(recs) == 6  # the run went on
        assert recs[1024]["status"] == "failed"
        assert recs[1024]["error"].startswith("describe: HTTP 400: This model's maximum context")
        assert recs[1024]["attempts"]["describe"] == 1  # not retried
        assert all(r["status"] == "ok" for x, r in recs.items() if x != 1024)
        summary = caption_slide(csv_path, patches, out, _cfg(srv.base_url, max_failed_fraction=0.2),
                                target_mpp=0.5)
    assert summary["n_ok"] == 5 and summary["n_failed"] == 1 and out.exists()


@pytest.mark.parametrize("case", ["401", "403", "model", "summarize_model", "400model"])
def test_auth_and_missing_model_stop_early_with_one_message(tmp_path, monkeypatch, case):
    csv_path, patches = write_selection(tmp_path, n=12)
    out = tmp_path / "cap" / "slide_a.jsonl"
    kw = {}
    if case == "401":
        kw = dict(api_key=SECRET)
    elif case == "403":
        kw = dict(faults=["403"] * 100)
    elif case in ("model", "summarize_model"):
        kw = dict(served_models={"m"})
    srv = MockChatServer(latency_s=0.01, **kw)
    if case == "400model":  # some servers answer 400 for an unknown model
        srv.fault_for = lambda body: "400model"
        from pathgen_testkit import mock_chat_server
        monkeypatch.setitem(mock_chat_server._ERRORS, "400model",
                            (400, "invalid_request_error", "Unknown model: {model}"))
    model = "gpt-nope" if case in ("model", "400model") else "m"
    oa = dict(model=model, summarize_model="nope-text" if case == "summarize_model" else None)
    with srv:
        cfg = _cfg(srv.base_url, openai=oa, concurrency=4)
        t0 = time.perf_counter()
        with pytest.raises(FatalRequestError) as exc:
            caption_slide(csv_path, patches, out, cfg, target_mpp=0.5)
        elapsed = time.perf_counter() - t0
    msg = str(exc.value)
    assert srv.base_url in msg and elapsed < 10
    if case in ("401", "403"):
        assert f"refused the request for model '{model}'" in msg and "api_key_env" in msg
        assert len(srv.log) <= 4  # stopped early: no retries, no further items
    else:
        bad = "nope-text" if case == "summarize_model" else model
        assert f"does not serve model '{bad}'" in msg
    print(f"\n[{case}] -> {msg} ({elapsed:.2f}s)")


def test_cli_reports_fatal_once_and_exits_nonzero(tmp_path, capsys):
    from pathgen.cli import main

    csv_path, patches = write_selection(tmp_path, n=6)
    out = tmp_path / "cap" / "slide_a.jsonl"
    with MockChatServer(latency_s=0.01, api_key=SECRET) as srv:
        rc = main(["caption", str(csv_path), "--patches-dir", str(patches), "--out", str(out),
                   "--backend", "openai", "--model", "m", "--base-url", srv.base_url,
                   "--mpp", "0.5", "--concurrency", "3",
                   "--set", "captioning.openai.api_key_env=PATHGEN_TEST_NO_SUCH_KEY"])
    err = capsys.readouterr().err
    assert rc == 4 and err.count("pathgen caption: stopped:") == 1
    assert srv.base_url in err and "'m'" in err and "Traceback" not in err


def test_api_key_travels_in_header_only(tmp_path, monkeypatch):
    monkeypatch.setenv("PATHGEN_TEST_KEY", SECRET)
    csv_path, patches = write_selection(tmp_path, n=2)
    with MockChatServer(latency_s=0.0, api_key=SECRET) as srv:
        summary = caption_slide(csv_path, patches, tmp_path / "c" / "slide_a.jsonl",
                                _cfg(srv.base_url, openai=dict(api_key_env="PATHGEN_TEST_KEY")),
                                target_mpp=0.5)
    assert summary["n_ok"] == 2
    assert all(h.get("Authorization") == f"Bearer {SECRET}" for h in srv.headers)


# --- 7. regexes validated with the config --------------------------------------------------------

def test_invalid_refusal_regex_fails_validation(tmp_path):
    with pytest.raises(ConfigError) as exc:
        validate_config({"captioning": {"filters": {
            "extra_refusal_patterns": [r"\bok\b", "(unclosed", "[z-a]"]}}})
    msg = str(exc.value)
    assert "captioning.filters.extra_refusal_patterns[1]" in msg and "'(unclosed'" in msg
    assert "not a valid regular expression" in msg
    cfg = validate_config({"captioning": {"filters": {"extra_refusal_patterns": [r"\bi refuse\b"]}}})
    assert cfg.captioning.filters.extra_refusal_patterns == [r"\bi refuse\b"]
    from pathgen.config import load_config

    (tmp_path / "c.yaml").write_text("captioning:\n  filters:\n    extra_refusal_patterns: ['a', '*x']\n")
    with pytest.raises(ConfigError, match=r"extra_refusal_patterns\[1\] = '\*x'"):
        load_config(tmp_path / "c.yaml")


# --- 9. secrets -----------------------------------------------------------------------------

def test_credentials_in_base_url_are_refused_without_echo(tmp_path, capsys):
    with pytest.raises(ConfigError) as exc:
        validate_config({"captioning": {"openai": {
            "base_url": f"http://alice:{SECRET}@127.0.0.1:8000/v1"}}})
    msg = str(exc.value)
    assert "captioning.openai.base_url" in msg and "api_key_env" in msg and SECRET not in msg
    from pathgen.cli import main

    csv_path, patches = write_selection(tmp_path, n=1)
    rc = main(["caption", str(csv_path), "--patches-dir", str(patches), "--out",
               str(tmp_path / "o.jsonl"), "--backend", "openai",
               "--base-url", f"https://bob:{SECRET}@example.invalid/v1"])
    err = capsys.readouterr().err
    assert rc == 2 and "api_key_env" in err and SECRET not in err and "Traceback" not in err


def test_no_log_line_carries_credentials(caplog):
    caplog.set_level(logging.DEBUG)  # everything, as with `pathgen -v`
    with MockChatServer(latency_s=0.0, faults=["500"]) as srv:
        url = srv.base_url.replace("http://", f"http://alice:{SECRET}@")  # bypasses validation
        client = OpenAIChatClient(url, "m", api_key=SECRET, max_retries=1, backoff_base_s=0.01)

        async def go():
            try:
                return await client.chat([{"role": "user", "content": "hi"}], 8)
            finally:
                await client.aclose()
        assert asyncio.run(go()).text
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "retrying" in text and SECRET not in text


@pytest.fixture
def http_log_levels():
    loggers = [logging.getLogger(n) for n in ("httpx", "httpcore")]
    saved = [lg.level for lg in loggers]
    yield loggers
    for lg, level in zip(loggers, saved):
        lg.setLevel(level)


def test_redaction_applies_even_when_httpx_logging_is_on(caplog, http_log_levels):
    httpx_log, httpcore_log = http_log_levels
    httpx_log.setLevel(logging.INFO)  # the user turned it on on purpose
    protect_http_logs()
    assert httpx_log.level == logging.INFO  # an explicit level is respected...
    caplog.set_level(logging.DEBUG)
    httpx_log.info('HTTP Request: %s %s "%s"', "POST",
                   httpx.URL(f"http://alice:{SECRET}@h:1/v1/chat/completions"), "HTTP/1.1 200 OK")
    httpx_log.info("headers %s", {"Authorization": f"Bearer {SECRET}"})
    msgs = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert len(msgs) == 2 and all(SECRET not in m for m in msgs)  # ...and still redacted
    assert "http://***@h:1/v1/chat/completions" in msgs[0]
    assert redact(f"authorization: Basic {SECRET}") == "authorization: Basic ***"
    assert isinstance(RedactSecrets(), logging.Filter)
    httpcore_log.setLevel(logging.NOTSET)
    protect_http_logs()
    assert httpcore_log.level == logging.WARNING


# --- --concurrency ----------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["-1", "0", "two"])
def test_cli_concurrency_must_be_positive(tmp_path, capsys, value):
    from pathgen.cli import main

    csv_path, patches = write_selection(tmp_path, n=1)
    with pytest.raises(SystemExit) as exc:
        main(["caption", str(csv_path), "--patches-dir", str(patches), "--out",
              str(tmp_path / "o.jsonl"), "--concurrency", value])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "argument --concurrency" in err and "Traceback" not in err
    rc = main(["caption", str(csv_path), "--patches-dir", str(patches), "--out",
               str(tmp_path / "o.jsonl"), "--set", "captioning.concurrency=-1"])
    assert rc == 2 and "captioning.concurrency" in capsys.readouterr().err


def test_run_items_rejects_zero_concurrency(tmp_path):
    with pytest.raises(ValueError, match="concurrency"):
        asyncio.run(pipeline.run_items([], _ScriptedBackend(), agent_settings(CaptioningConfig()),
                                       lambda r: None, concurrency=0))


def test_agent_error_still_records_item(tmp_path):
    """An AgentError (e.g. HTTP 400) is an item failure, not a run failure."""
    settings = agent_settings(CaptioningConfig())
    written = []
    asyncio.run(pipeline.run_items(_items(tmp_path, 6), _ScriptedBackend(
        boom_x=2, exc=AgentError("HTTP 400: too long")), settings, written.append, concurrency=3))
    assert len(written) == 6
    assert [r["status"] for r in written if r["x"] == 2] == ["failed"]
