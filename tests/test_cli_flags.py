"""Convenience flags are config overrides: `pathgen caption --backend X` is `--set
captioning.backend=X`, merged into the raw config (with every --set, in command-line order)
before the one validation (pathgen.cli.add_config_flag / config_from_args)."""

from __future__ import annotations

import json

import pytest

from pathgen.cli import build_parser, config_from_args, main
from pathgen.config import ConfigError
from pathgen_testkit.patches import write_selection

CAPTION = ["caption", "sel.csv", "--patches-root", "patches", "--out", "o.jsonl"]


@pytest.fixture
def morphometric_cwd(tmp_path, monkeypatch):
    """A working directory whose ./config.yaml says `captioning.backend: morphometric`."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    (tmp_path / "config.yaml").write_text("demo: {enabled: true}\n"
                                          "captioning: {backend: morphometric, concurrency: 4}\n")
    return tmp_path


def _cfg(argv: list[str]):
    return config_from_args(build_parser().parse_args(argv))


def _dump(argv: list[str]) -> dict:
    return _cfg(argv).model_dump(mode="json")


def test_backend_flag_with_an_agent_endpoint_over_a_morphometric_config(morphometric_cwd):
    """The reported failure: --set captioning.agents.describe.endpoint was validated against
    config.yaml's backend before --backend applied ("does not apply to backend 'morphometric'")."""
    endpoint = ["--set", "captioning.agents.describe.endpoint=http://gpu1:8000/v1"]
    for argv in (CAPTION + ["--backend", "openai", *endpoint], CAPTION + [*endpoint, "--backend", "openai"]):
        c = _cfg(argv).captioning
        assert c.backend == "openai" and c.concurrency == 4  # the rest of config.yaml stays
        assert c.agent("describe").endpoints == ("http://gpu1:8000/v1",)
    with pytest.raises(ConfigError, match="does not apply to backend 'morphometric'"):
        _cfg(CAPTION + endpoint)  # without --backend the config.yaml backend still rules


def test_caption_runs_with_backend_flag_and_a_per_agent_endpoint(morphometric_cwd, capsys):
    from pathgen_testkit.mock_chat_server import MockChatServer

    csv_path, patches = write_selection(morphometric_cwd, n=2)
    out = morphometric_cwd / "cap" / "slide_a.jsonl"
    with MockChatServer(latency_s=0.0) as main_srv, MockChatServer(latency_s=0.0) as gpu1:
        rc = main(["caption", str(csv_path), "--patches-root", str(patches), "--out", str(out),
                   "--backend", "openai", "--base-url", main_srv.base_url, "--model", "m",
                   "--set", f"captioning.agents.describe.endpoint={gpu1.base_url}",
                   "--mpp", "0.5", "--concurrency", "2"])
        assert rc == 0, capsys.readouterr().err
        assert json.loads(capsys.readouterr().out)["n_ok"] == 2
        assert len(gpu1.bodies) == 2 and len(main_srv.bodies) == 4  # describe / revise+summarize
        assert {b["model"] for b in gpu1.bodies + main_srv.bodies} == {"m"}


@pytest.mark.parametrize("backend", ["openai", "transformers", "morphometric"])
def test_backend_flag_equals_its_set(morphometric_cwd, backend):
    assert _dump(CAPTION + ["--backend", backend]) == _dump(
        CAPTION + ["--set", f"captioning.backend={backend}"])


def test_caption_flags_equal_their_sets(morphometric_cwd):
    flags = ["--backend", "openai", "--model", "m", "--base-url", "http://h:1/v1",
             "--concurrency", "3"]
    sets = ["captioning.backend=openai", "captioning.openai.model=m",
            "captioning.openai.base_url=http://h:1/v1", "captioning.concurrency=3"]
    assert _dump(CAPTION + flags) == _dump(CAPTION + [a for s in sets for a in ("--set", s)])
    # --model names the model of the backend the other overrides leave, wherever it stands
    c = _cfg(CAPTION + ["--model", "m", "--backend", "transformers"]).captioning
    assert c.transformers.model == "m" and c.openai.model != "m"


def test_flags_and_sets_apply_in_command_line_order(morphometric_cwd):
    both = ["--backend", "openai", "--set", "captioning.backend=transformers"]
    assert _cfg(CAPTION + both).captioning.backend == "transformers"
    assert _cfg(CAPTION + both[2:] + both[:2]).captioning.backend == "openai"


def test_flag_values_stay_as_typed(morphometric_cwd):
    """A string flag is a string (no YAML reading of '1.5' or '{}' as --set would do)."""
    assert _cfg(CAPTION + ["--backend", "openai", "--model", "1.5"]).captioning.openai.model == "1.5"
    cfg = _cfg(["baseline-data", "--template", "{} tissue"])
    assert cfg.training.slide_text.template == "{} tissue"


# every subcommand's config flags: the flag gives the config its --set gives
FLAG_CASES = [
    (["features", "s.svs", "--coords", "c.h5", "--out", "f.h5"],
     [("--encoder", "tiny-demo", "features.encoder"), ("--batch-size", "8", "features.batch_size"),
      ("--workers", "0", "features.num_workers"), ("--device", "cpu", "features.device"),
      ("--dtype", "float16", "features.dtype"), ("--reader", "tiff", "features.reader")]),
    (["select", "f.h5", "--slide", "s.svs", "--out", "o.csv", "--patches-dir", "p"],
     [("--top-k", "4", "selection.prompt_top_k"), ("--cap", "50", "selection.max_per_slide"),
      ("--factor", "2.5", "selection.kmeans_factor"), ("--dedupe-cosine", "0.9", "selection.dedupe_cosine"),
      ("--image-format", "png", "selection.image_format"), ("--image-size", "224", "selection.image_size_px"),
      ("--reports", "r.csv", "selection.reports"), ("--prompts-file", "p.yaml", "selection.prompts_file")]),
    (["build-dataset", "a.jsonl", "--out", "d"],
     [("--csv-separator", ";", "dataset.csv_separator"), ("--csv-paths", "relative", "dataset.csv_paths"),
      ("--shard-size", "10", "dataset.shard_size"), ("--images", "copy", "dataset.images"),
      ("--caption-stage", "revise", "dataset.caption_stage"), ("--dedup-cosine", "0.98", "dataset.dedup_cosine")]),
    (["train"], [("--results-dir", "elsewhere", "results_dir"), ("--arch", "ViT-B-32", "training.arch"),
                 ("--pretrained", "openai", "training.pretrained"), ("--epochs", "3", "training.epochs"),
                 ("--batch-size", "16", "training.batch_size")]),
    (["baseline-data"], [("--labels", "l.csv", "training.slide_text.labels"),
                         ("--template", "Slide of {}.", "training.slide_text.template")]),
    (["zeroshot", "--benchmark", "b"], [("--bootstrap", "10", "evaluation.zeroshot.bootstrap"),
                                        ("--device", "cpu", "evaluation.zeroshot.device"),
                                        ("--results-dir", "r2", "results_dir")]),
    (["mil", "--task", "t"], [("--epochs", "2", "evaluation.mil.epochs"), ("--seed", "3", "evaluation.mil.seed"),
                              ("--select-by", "f1_auc", "evaluation.mil.select_by"),
                              ("--device", "cpu", "evaluation.mil.device")]),
    (["instruct", "a.jsonl", "--out", "i"], [("--generator", "llm", "instruct.generator")]),
    (["agents", "build-data", "a.jsonl", "--out", "d"],
     [("--teacher", "backend", "agents.data.teacher"), ("--corrupter", "llm", "agents.data.corrupter")]),
    (["agents", "train", "--data", "d", "--agent", "describe", "--out", "o"],
     [("--base-model", "some/vlm", "agents.train.base_model"), ("--max-steps", "5", "agents.train.max_steps")]),
    (["agents", "export", "ckpt", "--out", "o"], [("--base-model", "some/vlm", "agents.train.base_model")]),
    (["demo-slides"], [("--out-dir", "demo2", "demo.out_dir"), ("--n-slides", "3", "demo.n_slides"),
                       ("--seed", "7", "demo.seed")]),
    (["demo-benchmark"], [("--out-dir", "demo2", "demo.out_dir")]),
]


@pytest.mark.parametrize("argv,flags", FLAG_CASES, ids=[" ".join(c[0][:2]) for c in FLAG_CASES])
def test_every_config_flag_equals_its_set(morphometric_cwd, argv, flags):
    by_flags = _dump(argv + [a for flag, value, _ in flags for a in (flag, value)])
    by_sets = _dump(argv + [a for _, value, key in flags for a in ("--set", f"{key}={value}")])
    assert by_flags == by_sets
    assert by_flags != _dump(argv)  # the flags changed something


def test_switches_and_repeated_flags(morphometric_cwd):
    args = ["build-dataset", "a.jsonl", "--out", "d"]
    assert _dump(args + ["--include-rejected"]) == _dump(args + ["--set", "dataset.accepted_only=false"])
    z = ["zeroshot", "--benchmark", "b"]
    assert _dump(z + ["--prompting", "ensemble"]) == _dump(z + ["--set", "evaluation.zeroshot.prompting=[ensemble]"])
    assert _cfg(z + ["--prompting", "ensemble", "--prompting", "single"]).evaluation.zeroshot.prompting == [
        "ensemble", "single"]


def test_train_data_flags_are_one_stage(morphometric_cwd, capsys):
    """`train --data A --data B --csv-separator S` = --set training.stages=[{name: main, ...}]."""
    from pathgen_testkit.training import make_pairs

    a = make_pairs(morphometric_cwd / "a", sep="|", absolute=True)
    b = make_pairs(morphometric_cwd / "b", sep="|", absolute=True)
    common = ["train", "--dry-run", "--results-dir", "r", "--set", "training.pretrained=openai"]
    for sources, shown in (([a], "--csv-separator '|'"), ([a, b], "main/train.csv")):  # 2: merged
        assert main(common + [x for s in sources for x in ("--data", str(s))] + ["--csv-separator", "|"]) == 0
        by_flags = capsys.readouterr().out
        stage = f"[{{name: main, data: {[str(s) for s in sources]}, csv_separator: '|'}}]"
        assert main(common + ["--set", f"training.stages={stage}"]) == 0
        assert capsys.readouterr().out == by_flags and shown in by_flags


def test_a_bad_value_names_the_flag_and_the_key(morphometric_cwd, capsys):
    with pytest.raises(ConfigError) as exc:
        _cfg(["agents", "train", "--data", "d", "--agent", "describe", "--out", "o", "--max-steps", "0"])
    msg = str(exc.value)
    assert "'agents.train.max_steps'" in msg and "greater than or equal to 1" in msg
    assert "--max-steps sets 'agents.train.max_steps'" in msg
    # through `pathgen`: a configuration error (exit 2), one message, no traceback
    rc = main(["features", "s.svs", "--coords", "c.h5", "--out", "f.h5", "--encoder", "nope"])
    err = capsys.readouterr().err
    assert rc == 2 and "features.encoder 'nope' is not defined" in err
    assert "--encoder sets 'features.encoder'" in err and "Traceback" not in err
    assert main(CAPTION + ["--model", "x"]) == 2  # config.yaml's backend is morphometric
    assert "--model does not apply to the morphometric backend" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:  # argparse checks choices and types first
        main(CAPTION + ["--backend", "gpt"])
    assert stop.value.code == 2 and "argument --backend: invalid choice" in capsys.readouterr().err


def test_set_needs_key_equals_yaml(morphometric_cwd):
    with pytest.raises(ConfigError, match="--set expects KEY=VALUE"):
        _cfg(CAPTION + ["--backend", "openai", "--set", "captioning.backend"])
    with pytest.raises(ConfigError, match="not valid YAML"):  # a message, not a yaml traceback
        _cfg(["build-dataset", "a.jsonl", "--out", "d", "--set", "dataset.csv_separator=,"])
    args = ["build-dataset", "a.jsonl", "--out", "d"]  # the flag needs no quoting
    assert _dump(args + ["--csv-separator", ","]) == _dump(args + ["--set", "dataset.csv_separator=','"])
