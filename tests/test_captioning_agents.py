"""A model per agent (captioning.agents) against real local HTTP servers
(pathgen_testkit.mock_chat_server.MockChatServer, OpenAI chat-completions format): each agent's
requests carry its own model and go to its own endpoint(s); several endpoints share the load,
and one that dies mid-run loses no item."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from pathgen.captioning.backends import make_backend
from pathgen.captioning.backends.openai import Endpoint, OpenAIChatClient
from pathgen_testkit.mock_chat_server import MockChatServer
from pathgen.captioning.stage import caption_slide
from pathgen.config.captioning import MORPHOMETRIC_MODEL_ID, CaptioningConfig
from pathgen_testkit.patches import write_selection


FAST = dict(timeout_s=5.0, max_retries=4, backoff_base_s=0.01, backoff_max_s=0.1)


def _has_image(body: dict) -> bool:
    content = body["messages"][-1]["content"]
    return isinstance(content, list) and any(p.get("type") == "image_url" for p in content)


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_each_agent_sends_its_own_model_to_its_own_endpoints(tmp_path):
    with MockChatServer(latency_s=0.02) as d1, MockChatServer(latency_s=0.02) as d2, \
            MockChatServer(latency_s=0.01) as rv, MockChatServer(latency_s=0.01) as sm:
        cfg = CaptioningConfig(backend="openai", concurrency=8, max_failed_fraction=0.0,
                               openai=dict(base_url=rv.base_url, model="default-vlm", **FAST),
                               agents=dict(describe=dict(model="PathGen-LLaVA",
                                                         endpoint=[d1.base_url, d2.base_url]),
                                           revise=dict(model="revise-vlm", max_tokens=300),
                                           summarize=dict(model="text-llm", endpoint=sm.base_url,
                                                          temperature=0.0)))
        csv_path, patches = write_selection(tmp_path, kinds=("tumour", "stroma"), n=12)
        out = tmp_path / "cap" / "slide_a.jsonl"
        summary = caption_slide(csv_path, patches, out, cfg, target_mpp=0.5)
        bodies = {"d1": d1.bodies, "d2": d2.bodies, "rv": rv.bodies, "sm": sm.bodies}
    assert summary["n_ok"] == 12
    assert len(bodies["d1"]) + len(bodies["d2"]) == 12 and bodies["d1"] and bodies["d2"]
    for b in bodies["d1"] + bodies["d2"]:
        assert b["model"] == "PathGen-LLaVA" and _has_image(b) and b["max_tokens"] == 512
    assert len(bodies["rv"]) == 12
    assert all(b["model"] == "revise-vlm" and _has_image(b) and b["max_tokens"] == 300
               for b in bodies["rv"])
    assert len(bodies["sm"]) >= 12
    assert all(b["model"] == "text-llm" and not _has_image(b) and b["temperature"] == 0.0
               for b in bodies["sm"])
    # provenance: which model wrote each stage, per record and per slide
    for r in _lines(out):
        agents = r["provenance"]["agents"]
        assert {k: v["model"] for k, v in agents.items()} == {
            "describe": "PathGen-LLaVA", "revise": "revise-vlm", "summarize": "text-llm"}
        assert agents["describe"]["endpoints"] == [d1.base_url, d2.base_url]
        assert r["model"] == "PathGen-LLaVA"
    assert summary["agents"]["summarize"]["endpoints"] == [sm.base_url]


def test_killing_one_of_two_endpoints_mid_run_loses_no_item(tmp_path):
    a, b = MockChatServer(capacity=4, latency_s=0.05), MockChatServer(capacity=4, latency_s=0.05)
    with a, b:
        cfg = CaptioningConfig(backend="openai", concurrency=8, max_failed_fraction=0.0,
                               openai=dict(base_url=a.base_url, model="m",
                                           max_concurrent_requests=4, **FAST),
                               agents=dict(describe=dict(endpoint=[a.base_url, b.base_url]),
                                           revise=dict(endpoint=[a.base_url, b.base_url]),
                                           summarize=dict(endpoint=[a.base_url, b.base_url])))

        def killer():  # dies with requests in service
            while len(a.log) < 15:
                time.sleep(0.005)
            a.kill()

        t = threading.Thread(target=killer)
        t.start()
        csv_path, patches = write_selection(tmp_path, kinds=("tumour", "stroma"), n=30)
        out = tmp_path / "cap" / "slide_a.jsonl"
        backend = make_backend(cfg)
        summary = caption_slide(csv_path, patches, out, cfg, target_mpp=0.5, backend=backend)
        t.join()
        eps = backend.parts["describe"].client.endpoints
    recs = _lines(out)
    assert a.dead and len(recs) == 30 and summary["n_failed"] == 0
    assert all(r["status"] == "ok" and r["caption"] for r in recs)
    assert 15 <= len(a.log) < 90 and len(b.log) >= 90 - len(a.log)  # b took over
    assert eps[0].stats["taken_out"] >= 1 and eps[1].stats["taken_out"] == 0


def test_failed_endpoint_is_probed_again_and_comes_back(monkeypatch):
    monkeypatch.setattr(Endpoint, "PROBE_FIRST_S", 0.2)
    a = MockChatServer(latency_s=0.01)
    port = a.httpd.server_address[1]
    with MockChatServer(latency_s=0.01) as b:
        with a:
            pass  # a is gone: its port refuses connections
        client = OpenAIChatClient([a.base_url, b.base_url], "m", None, 4, **FAST)

        async def go(n):
            await asyncio.gather(*[client.chat([{"role": "user", "content": "hi"}], 8)
                                   for _ in range(n)])

        async def scenario():
            await go(8)
            assert client.endpoints[0].down_until > 0  # taken out
            with MockChatServer(latency_s=0.01, port=port) as back:  # restarted
                await asyncio.sleep(0.3)
                for _ in range(10):
                    await go(4)
                await client.aclose()
                return len(back.log)

        served_after_restart = asyncio.run(scenario())
    assert served_after_restart >= 10 and client.endpoints[0].down_until == 0


def test_requests_go_to_the_least_loaded_endpoint():
    with MockChatServer(latency_s=0.3) as slow, MockChatServer(latency_s=0.01) as fast:
        client = OpenAIChatClient([slow.base_url, fast.base_url], "m", None, 16, **FAST)

        async def go():
            tasks = []
            try:
                for _ in range(40):  # a steady stream: the slow server keeps more outstanding
                    tasks.append(asyncio.create_task(
                        client.chat([{"role": "user", "content": "x"}], 8)))
                    await asyncio.sleep(0.01)
                await asyncio.gather(*tasks)
            finally:
                await client.aclose()

        asyncio.run(go())
    # round-robin would split 20/20; by outstanding load the fast server gets most
    assert len(fast.log) > 2 * len(slow.log)


# --- config ---------------------------------------------------------------------------------

def test_agents_inherit_the_old_single_model_keys():
    cfg = CaptioningConfig(backend="openai",
                           openai=dict(model="vlm", summarize_model="llm", summary_max_tokens=99))
    d, r, s = (cfg.agent(x) for x in ("describe", "revise", "summarize"))
    assert (d.model, r.model, s.model) == ("vlm", "vlm", "llm")
    assert d.endpoints == s.endpoints == ("http://127.0.0.1:8000/v1",)
    assert s.cfg.summary_max_tokens == 99 and s.cfg.model == "llm"
    t = CaptioningConfig(backend="transformers", transformers=dict(model="v", text_model="lm"))
    assert t.agent("summarize").model == "lm" and t.agent("revise").model == "v"
    assert t.agent("describe").cfg.text_model is None  # describe never loads the text LM


def test_hash_changes_with_an_agent_model_but_not_with_its_endpoints():
    base = CaptioningConfig(backend="openai")
    eps = CaptioningConfig(backend="openai", agents=dict(describe=dict(
        endpoint=["http://a:8000/v1", "http://b:8000/v1"])))
    other = CaptioningConfig(backend="openai", agents=dict(summarize=dict(model="llm")))
    mixed = CaptioningConfig(backend="openai", agents=dict(revise=dict(backend="morphometric")))
    assert base.prompt_hash() == eps.prompt_hash()
    assert len({base.prompt_hash(), other.prompt_hash(), mixed.prompt_hash()}) == 3
    # every agent setting reaches the caption rule's params (it dumps the whole section)
    assert eps.model_dump(mode="json")["agents"]["describe"]["endpoint"][1] == "http://b:8000/v1"


@pytest.mark.parametrize("agents,needle", [
    (dict(revise=dict(endpoint="http://x:1/v1")), "captioning.agents.revise.endpoint does not apply"),
    (dict(summarize=dict(backend="transformers", temperature=0.5)), "summarize.temperature"),
    (dict(describe=dict(endpoint=[])), "endpoint list is empty"),
    (dict(describe=dict(modle="x")), "modle"),
])
def test_bad_agent_settings_name_the_key(agents, needle):
    with pytest.raises(ValidationError, match=needle):
        CaptioningConfig(backend="morphometric" if "revise" in agents else "openai", agents=agents)


def test_credentials_in_an_agent_endpoint_are_refused_without_echo():
    from pathgen.config import PathgenConfig
    from pathgen.config.base import format_validation_error

    with pytest.raises(ValidationError) as exc:
        PathgenConfig(captioning=dict(backend="openai", agents=dict(describe=dict(
            endpoint=["http://a:1/v1", "http://user:s3cret@b:1/v1"]))))
    msg = format_validation_error(exc.value, PathgenConfig, "config.yaml")
    assert "captioning.agents.describe" in msg and "credentials" in msg and "s3cret" not in msg


def test_mixed_backends_per_agent_share_instances(tmp_path):
    """describe+revise on one server share one client; summarize on the morphometric
    baseline (text only, offline)."""
    with MockChatServer(latency_s=0.01) as srv:
        cfg = CaptioningConfig(backend="openai", concurrency=4,
                               openai=dict(base_url=srv.base_url, model="vlm", **FAST),
                               agents=dict(summarize=dict(backend="morphometric")))
        backend = make_backend(cfg)
        assert backend.parts["describe"] is backend.parts["revise"]
        assert backend.name == "openai+morphometric"
        csv_path, patches = write_selection(tmp_path, kinds=("tumour",), n=3)
        out = tmp_path / "c" / "slide_a.jsonl"
        caption_slide(csv_path, patches, out, cfg, target_mpp=0.5, backend=backend)
        assert len(srv.bodies) == 6 and all(_has_image(b) for b in srv.bodies)
    r = _lines(out)[0]
    assert r["provenance"]["agents"]["summarize"] == {"backend": "morphometric",
                                                      "model": MORPHOMETRIC_MODEL_ID}


def test_a_local_model_for_one_agent_gives_the_caption_job_a_gpu():
    from pathgen.config import PathgenConfig

    server = PathgenConfig(demo=dict(enabled=True), captioning=dict(backend="openai"))
    local = PathgenConfig(demo=dict(enabled=True), captioning=dict(
        backend="openai", agents=dict(summarize=dict(backend="transformers"))))
    assert server.resources["caption"].gpu == 0 and local.resources["caption"].gpu == 1


def test_documented_multi_model_examples_are_valid_configs():
    import re

    import yaml

    from pathgen.config import PathgenConfig

    root = Path(__file__).resolve().parents[1]
    found = 0
    for doc in ("docs/captioning.md", "README.md"):
        for block in re.findall(r"```yaml\n(.*?)```", (root / doc).read_text(), re.S):
            data = yaml.safe_load(block)
            if "agents" in (data.get("captioning") or {}):
                cfg = PathgenConfig(demo={"enabled": True}, captioning=data["captioning"])
                found += 1
                if cfg.captioning.backend == "openai":
                    assert len(cfg.captioning.agent("describe").endpoints) == 2, doc
    assert found >= 2
