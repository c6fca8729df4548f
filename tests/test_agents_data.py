"""`pathgen agents build-data`: LLaVA conversation records (format: {"id", "image",
"conversations": [{"from": "human", "value": "<image>\\n..."}, {"from": "gpt", ...}]}, read
back here from that documented shape), controlled corruptions, split by slide."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from PIL import Image

from pathgen.agents import corrupt as C
from pathgen.agents.build import build_data
from pathgen.agents.corrupt_llm import corrupt_with_llm
from pathgen.agents.split import split_slides
from pathgen.agents.teacher import TeacherError, pairs_from_files
from pathgen.agents.vocab import SWAP_GROUPS
from pathgen.captioning.prompts import load_templates
from pathgen.cli import main
from pathgen.config.agents import AgentsDataConfig
from pathgen_testkit.patches import MPP, write_selection
from pathgen_testkit.toy_captions import TOY, write_toy_captions

TEXT = ("Dense sheets of tumour cells with hyperchromatic nuclei. Glands are lined by crowded "
        "epithelial cells. Scattered lymphocytes are present.")


def _load(path: Path) -> list[dict]:
    return json.loads(path.read_text())


def _exchange(rec: dict) -> tuple[str, str]:
    """Reader side of the LLaVA contract (formats.md), written from the documented shape."""
    assert set(rec) >= {"id", "image", "conversations"}
    human, gpt = rec["conversations"][:2]
    assert human["from"] == "human" and gpt["from"] == "gpt"
    assert human["value"].startswith("<image>\n")
    return human["value"][len("<image>\n"):], gpt["value"]


@pytest.mark.parametrize("seed", range(12))
def test_modify_swaps_one_term_within_its_attribute(seed):
    edit = C.corrupt_modify(TEXT, random.Random(seed))
    assert edit.kind == "modify" and edit.attribute in SWAP_GROUPS
    group = next(g for g in SWAP_GROUPS[edit.attribute] if edit.detail["from"].lower() in g)
    assert edit.detail["to"].lower() in group and edit.detail["to"].lower() != edit.detail["from"].lower()
    # exactly one term differs: the text is the original with that one span replaced
    assert edit.text.replace(edit.detail["to"], edit.detail["from"], 1) == TEXT


def test_add_inserts_an_absent_feature_and_delete_drops_a_stated_one():
    add = C.corrupt_add(TEXT, random.Random(0))
    assert add.detail["sentence"] in add.text and add.detail["sentence"] not in TEXT
    assert add.detail["feature"] != "lymphocytic infiltrate"  # already mentioned in TEXT
    assert add.text.replace(" " + add.detail["sentence"], "") == TEXT
    dele = C.corrupt_delete(TEXT, random.Random(0))
    assert dele.detail["sentence"] in TEXT and dele.detail["sentence"] not in dele.text
    assert len(C.sentences(dele.text)) == len(C.sentences(TEXT)) - 1


def test_corrupt_falls_back_when_a_kind_does_not_apply_and_is_per_record_stable():
    one = "Pale pink material."  # one sentence, no vocabulary term: only `add` applies
    for seed in range(5):
        edit = C.corrupt(one, ["delete", "modify", "add"], random.Random(seed))
        assert edit.kind == "add"
    assert C.corrupt(one, ["delete", "modify"], random.Random(0)) is None
    a = C.corrupt(TEXT, ["add", "delete", "modify"], C.record_rng(3, "slide_x_0_0"))
    b = C.corrupt(TEXT, ["add", "delete", "modify"], C.record_rng(3, "slide_x_0_0"))
    assert a == b


def test_llm_corrupter_accepts_one_edit_and_rejects_rewrites():
    one_edit = TEXT.replace("Dense", "Sparse")
    edit = corrupt_with_llm(TEXT, ["modify"], random.Random(0), lambda prompt: one_edit)
    assert edit.corrupter == "llm" and edit.text == one_edit and edit.kind == "modify"
    seen = []
    edit = corrupt_with_llm(TEXT, ["modify"], random.Random(0),
                            lambda prompt: seen.append(prompt) or "Completely different words here.")
    assert TEXT in seen[0] and "one edit" in seen[0]
    assert edit.corrupter.startswith("rules") and edit.detail["llm_rejected"] == "rewrote the description"
    edit = corrupt_with_llm(TEXT, ["add"], random.Random(0), lambda prompt: TEXT)
    assert edit.detail["llm_rejected"] == "unchanged" and edit.text != TEXT


def test_split_is_by_slide_stable_and_both_sides_non_empty():
    slides = [f"s{i}" for i in range(40)]
    split = split_slides(slides, 0.25, seed=0)
    assert set(split.values()) == {"train", "val"} and 4 <= list(split.values()).count("val") <= 18
    grown = split_slides(slides + [f"t{i}" for i in range(10)], 0.25, seed=0)
    assert all(grown[s] == split[s] for s in slides)  # adding slides never moves one
    assert set(split_slides(["a", "b"], 0.01).values()) == {"train", "val"}
    assert set(split_slides(["a"], 0.5).values()) <= {"train", "val"}


def test_build_data_from_caption_records(tmp_path):
    files, patches = write_toy_captions(tmp_path, failed=True)
    pairs, skipped = pairs_from_files(files, patches, "describe", min_words=3)
    assert len(pairs) == 6 and skipped == {"no_text": 3, "too_short": 0, "duplicate": 0, "rejected": 0}
    again, skipped = pairs_from_files(files + files[:1], patches, "describe", min_words=3)
    assert again == pairs and skipped["duplicate"] == 2
    rejected = tmp_path / "rejects.jsonl"  # records the caption filters rejected are no teachers
    rejected.write_text(json.dumps({**json.loads(files[0].read_text().splitlines()[0]), "x": 7,
                                    "accepted": False}) + "\n")
    assert pairs_from_files([rejected], patches)[1]["rejected"] == 1
    templates = load_templates()
    card = build_data(pairs, tmp_path / "data", AgentsDataConfig(val_fraction=0.3), templates, patches)
    out = tmp_path / "data"
    train_slides, val_slides = set(card["slides"]["train"]), set(card["slides"]["val"])
    assert train_slides and val_slides and not train_slides & val_slides
    texts = {f"{s}_{512 * i}_1024": t for s, items in TOY.items() for i, (_, t) in enumerate(items)}
    describe = _load(out / "describe_train.json") + _load(out / "describe_val.json")
    assert len(describe) == 6 and card["n"]["describe_train"] + card["n"]["describe_val"] == 6
    for rec in describe:
        prompt, answer = _exchange(rec)
        assert answer == texts[rec["id"]]
        assert (patches / rec["image"]).is_file()
        assert (rec["slide_id"] in val_slides) == (rec["split"] == "val")
        with Image.open(patches / rec["image"]) as im:  # the pipeline's describe prompt
            assert prompt == templates.render("describe", field_um=f"{MPP * im.width:.0f}", mpp=f"{MPP:.3g}")
    revise = _load(out / "revise_train.json") + _load(out / "revise_val.json")
    assert len(revise) == 6
    for rec in revise:
        prompt, answer = _exchange(rec)
        original = texts[rec["id"].removesuffix("_revise")]
        assert answer == original and rec["corrupted"] != original
        assert prompt == templates.render("revise", description=rec["corrupted"])
        assert rec["edit"]["kind"] in {"add", "delete", "modify"} and rec["edit"]["corrupter"] == "rules"
    assert sum(card["edits"].values()) == 6 and card["image_folder"] == str(patches.resolve())


def test_descriptions_and_llava_files_are_teachers_too(tmp_path):
    _, patches = write_selection(tmp_path, "slide_z", kinds=("tumour", "stroma"))
    plain = tmp_path / "descriptions.jsonl"
    plain.write_text(json.dumps({"image": "slide_z/0_1024.jpg", "description": TEXT}) + "\n")
    llava = tmp_path / "llava.json"
    llava.write_text(json.dumps([{"id": "q1", "image": "slide_z/512_1024.jpg", "conversations": [
        {"from": "human", "value": "<image>\nDescribe."}, {"from": "gpt", "value": TEXT}]}]))
    pairs, _ = pairs_from_files([plain, llava], patches, min_words=3)
    assert [p.slide_id for p in pairs] == ["slide_z", "slide_z"]  # from the image's folder
    assert [p.id for p in pairs] == ["slide_z_0_1024", "q1"] and all(p.description == TEXT for p in pairs)
    with pytest.raises(TeacherError, match="--patches-root"):
        pairs_from_files([plain], tmp_path / "elsewhere")


def test_teacher_backend_describes_selected_patches(tmp_path):
    """teacher 'backend': the configured captioning backend (here the offline morphometric
    baseline, not a language model) writes the teacher descriptions."""
    from pathgen.agents.stage import build_stage
    from pathgen.config import validate_config

    csv_path, patches = write_selection(tmp_path, "slide_m", kinds=("tumour", "stroma", "lymphoid"))
    csv2, _ = write_selection(tmp_path, "slide_n", kinds=("stroma", "adipose"))
    cfg = validate_config({"demo": {"enabled": True}, "agents": {"data": {"teacher": "backend"}}})
    card = build_stage(cfg.agents.data, cfg.captioning, [csv_path, csv2], tmp_path / "data", patches,
                       target_mpp=MPP)
    assert card["teacher"].startswith("backend:morphometric:")
    recs = _load(tmp_path / "data" / "describe_train.json") + _load(tmp_path / "data" / "describe_val.json")
    assert len(recs) == 5 and all(len(_exchange(r)[1].split()) >= 8 for r in recs)


def test_cli_build_data_and_bad_input(tmp_path, capsys):
    files, patches = write_toy_captions(tmp_path)
    rc = main(["agents", "build-data", *map(str, files), "--patches-root", str(patches),
               "--out", str(tmp_path / "data"), "--set", "demo.enabled=true",
               "--set", "agents.data.val_fraction=0.3"])
    assert rc == 0 and (tmp_path / "data" / "revise_val.json").is_file()
    rc = main(["agents", "build-data", *map(str, files), "--out", str(tmp_path / "d2")])
    assert rc == 2 and "--patches-root" in capsys.readouterr().err  # images not beside the JSONLs
    rc = main(["agents", "build-data", str(files[0]), "--patches-root", str(patches),
               "--out", str(tmp_path / "d3"), "--set", "agents.data.edit_kinds=[]"])
    assert rc == 2 and "agents.data.edit_kinds" in capsys.readouterr().err


def test_describe_prompts_match_what_the_pipeline_sends(tmp_path):
    """Records written by the real captioning stage (caption_slide) feed build-data, and each
    describe human turn is the very prompt the pipeline sent for that patch."""
    from pathgen.captioning.backends.base import Backend
    from pathgen.captioning.items import Reply
    from pathgen.captioning.stage import caption_slide
    from pathgen.config.captioning import CaptioningConfig

    class Recording(Backend):  # answers with fixed prose; remembers each describe prompt
        name, model = "recording", "recording-v1"
        prompts: dict = {}

        async def describe(self, item, prompt):
            self.prompts[f"{item.slide_id}_{item.x}_{item.y}"] = prompt
            return Reply(TEXT)

        async def revise(self, item, description, prompt):
            return Reply(description)

        async def summarize(self, description, prompt, budget):
            return Reply("Dense sheets of tumour cells with hyperchromatic nuclei in the stroma.")

    ccfg = CaptioningConfig(concurrency=2, max_failed_fraction=0.0)
    files = []
    for slide in ("slide_p", "slide_r"):
        csv_path, patches = write_selection(tmp_path, slide, kinds=("tumour", "stroma"))
        files.append(tmp_path / "cap" / f"{slide}.jsonl")
        caption_slide(csv_path, patches, files[-1], ccfg, target_mpp=MPP, backend=Recording())
    pairs, _ = pairs_from_files(files, patches)
    build_data(pairs, tmp_path / "data", AgentsDataConfig(val_fraction=0.5), load_templates(), patches)
    recs = _load(tmp_path / "data" / "describe_train.json") + _load(tmp_path / "data" / "describe_val.json")
    assert len(recs) == 4 and len(Recording.prompts) == 4
    for rec in recs:
        assert _exchange(rec) == (Recording.prompts[rec["id"]], TEXT)


def test_llm_corrupter_edits_through_the_summarize_agents_server(tmp_path):
    """corrupter 'llm': build_stage asks the summarize agent's OpenAI-compatible server (here the
    local mock with canned behaviour, not a model) for each edit, from the captioning section."""
    import re

    from pathgen.agents.stage import build_stage
    from pathgen_testkit.mock_chat_server import MockChatServer
    from pathgen.config import validate_config

    def one_sentence_more(body):  # the description quoted in the prompt + one added sentence
        text = re.search(r'"""\n(.*?)\n"""', body["messages"][-1]["content"], re.S).group(1)
        return text + " Mitoses are present."

    files, patches = write_toy_captions(tmp_path)
    with MockChatServer(latency_s=0.0, reply=one_sentence_more) as server:
        cfg = validate_config({"demo": {"enabled": True}, "agents": {"data": {
            "corrupter": "llm", "min_words": 3, "edit_kinds": ["add"]}},
            "captioning": {"backend": "openai", "openai": {"base_url": server.base_url, "api_key_env": None}}})
        card = build_stage(cfg.agents.data, cfg.captioning, files, tmp_path / "data", patches)
        asked = {b["model"] for b in server.bodies}
    revise = _load(tmp_path / "data" / "revise_train.json") + _load(tmp_path / "data" / "revise_val.json")
    assert len(revise) == 6 and all(r["edit"]["corrupter"] == "llm" for r in revise)
    assert all(r["corrupted"].endswith("Mitoses are present.") for r in revise)
    assert asked == {cfg.captioning.agent("summarize").model} and card["corrupter"] == "llm"
