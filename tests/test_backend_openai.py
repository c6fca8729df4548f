"""The `openai` backend against a local mock OpenAI-compatible server with injected faults."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from pathgen.captioning.backends.openai import FatalRequestError, OpenAIBackend, OpenAIChatClient
from pathgen.captioning.items import AgentError
from pathgen_testkit.mock_chat_server import MockChatServer
from pathgen.config.captioning import CaptioningConfig, OpenAIBackendConfig
from pathgen.instruct.chat import TextChat, chat_settings
from pathgen_testkit.patches import write_selection


def _client(url, **kw):
    args = dict(max_concurrent_requests=4, timeout_s=1.0, max_retries=3, backoff_base_s=0.01,
                backoff_max_s=0.2)
    args.update(kw)
    return OpenAIChatClient(url, "m", None, **args)


async def _one(client):
    try:
        return await client.chat([{"role": "user", "content": "hi"}], 16)
    finally:
        await client.aclose()


@pytest.mark.parametrize("faults", [["429"], ["500", "500"], ["malformed"], ["nochoices"],
                                    ["timeout"]])
def test_retries_then_succeeds(faults):
    with MockChatServer(latency_s=0.01, faults=faults, hang_s=2.0) as srv:
        client = _client(srv.base_url, timeout_s=0.5)
        reply = asyncio.run(_one(client))
    assert reply.text and reply.attempts == len(faults) + 1
    assert client.stats["retries"] == len(faults)
    assert [f for _, f in srv.log] == faults + ["ok"]


def test_retry_after_is_honoured_and_backoff_grows():
    with MockChatServer(latency_s=0.0, faults=["500", "500", "500"]) as srv:
        client = _client(srv.base_url, backoff_base_s=0.1, backoff_max_s=5.0)
        asyncio.run(_one(client))
        t = [ts for ts, _ in srv.log]
    gaps = [b - a for a, b in zip(t, t[1:])]
    # base 0.1 s doubling with jitter in [0.5, 1.0] x base: >= 0.05, 0.1, 0.2
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.2
    with MockChatServer(latency_s=0.0, faults=["429"]) as srv:  # Retry-After: 0.05
        client = _client(srv.base_url, backoff_base_s=3.0, backoff_max_s=10.0)
        t0 = time.perf_counter()
        asyncio.run(_one(client))
    assert time.perf_counter() - t0 < 2.5  # used the server's 0.05 s, not the 3 s backoff


def test_gives_up_and_records_failure():
    with MockChatServer(latency_s=0.0, faults=["500"] * 10) as srv:
        client = _client(srv.base_url, max_retries=2)
        with pytest.raises(AgentError, match="gave up after 3 attempts") as exc:
            asyncio.run(_one(client))
    assert exc.value.attempts == 3 and client.stats["failures"] == 1


def test_fatal_4xx_is_not_retried():
    with MockChatServer(latency_s=0.0) as srv:
        client = _client(srv.base_url.replace("/v1", "/wrong"))
        with pytest.raises(FatalRequestError, match="404"):
            asyncio.run(_one(client))
        assert len(srv.log) == 0


def test_chat_text_and_bounded_concurrency(monkeypatch):
    with MockChatServer(capacity=64, latency_s=0.1) as srv:
        ccfg = CaptioningConfig(backend="openai", openai=dict(base_url=srv.base_url, model="m",
                                                              api_key_env="PATHGEN_TEST_KEY"))
        monkeypatch.setenv("PATHGEN_TEST_KEY", "secret")
        with TextChat(chat_settings(ccfg, "test"), 64) as chat:
            assert "Tumour" in chat("Summarize: dense tumour.")
        client = _client(srv.base_url, max_concurrent_requests=3)

        async def many():
            try:
                await asyncio.gather(*[client.chat([{"role": "user", "content": "x"}], 8)
                                       for _ in range(9)])
            finally:
                await client.aclose()
        t0 = time.perf_counter()
        asyncio.run(many())
    # 9 requests, at most 3 in flight, 0.1 s each -> >= 3 rounds
    assert time.perf_counter() - t0 >= 0.28


def test_stage_with_openai_backend_records_failures(tmp_path):
    from pathgen.captioning.stage import CaptioningIncomplete, caption_slide

    csv_path, patches = write_selection(tmp_path, kinds=("tumour", "stroma", "lymphoid"), n=4)
    out = tmp_path / "cap" / "slide_a.jsonl"
    # every request of one item fails: 1 item x (1 + 1 retry) 500s somewhere in the stream
    with MockChatServer(latency_s=0.01, faults=["ok", "500", "500"]) as srv:
        cfg = CaptioningConfig(backend="openai", concurrency=1, max_failed_fraction=0.0,
                               openai=dict(base_url=srv.base_url, model="m", max_retries=1,
                                           backoff_base_s=0.01))
        with pytest.raises(CaptioningIncomplete, match="1/4 patches failed"):
            caption_slide(csv_path, patches, out, cfg, target_mpp=0.5)
        assert not out.exists()
        partial = [json.loads(x) for x in (tmp_path / "cap" / "slide_a.partial.jsonl").read_text().splitlines()]
        failed = [r for r in partial if r["status"] == "failed"]
        assert len(failed) == 1 and failed[0]["error"].startswith("revise: HTTP 500")
        assert failed[0]["attempts"]["revise"] == 2
        body = srv.bodies[0]  # describe request: image as a base64 JPEG data URL
        url = body["messages"][0]["content"][0]["image_url"]["url"]
        assert url.startswith("data:image/jpeg;base64,/9j/")
        # rerun retries only the failed patch
        n_before = len(srv.log)
        summary = caption_slide(csv_path, patches, out, cfg, target_mpp=0.5)
        assert summary["captioned_this_run"] == 1 and len(srv.log) - n_before == 3
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(recs) == 4 and all(r["status"] == "ok" and r["accepted"] for r in recs)
    assert all(r["backend"] == "openai" and r["model"] == "m" for r in recs)
    assert all(r["revise_changed"] is False for r in recs)  # mock echoes the same description


def test_backend_builds_from_config():
    b = OpenAIBackend(OpenAIBackendConfig(base_url="http://127.0.0.1:9/v1", model="x"))
    assert b.name == "openai" and b.model == "x"
    asyncio.run(b.aclose())
