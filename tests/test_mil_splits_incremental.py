"""Generated MIL folds are incremental: added slides do not move the slides already placed."""

import json

import pandas as pd
import pytest

from pathgen.mil.splits import (ASSIGNMENT_FILE, PARTS, generate_splits, make_splits,
                                read_assignment, read_splits)

CLASSES = ["c0", "c1"]
KW = dict(folds=3, val_fraction=0.25, seed=0)


def cohort(n_cases: int, start: int = 0) -> pd.DataFrame:
    """n cases; every third case has two slides; labels alternate."""
    rows = []
    for i in range(start, start + n_cases):
        label = CLASSES[i % 2]
        for j in range(2 if i % 3 == 0 else 1):
            rows.append({"case_id": f"case{i:02d}", "slide_id": f"case{i:02d}_s{j}", "label": label,
                         "y": CLASSES.index(label)})
    return pd.DataFrame(rows)


def roles(splits) -> dict[str, tuple[str, ...]]:
    """slide -> its part in fold 0..k-1."""
    out: dict[str, list[str]] = {}
    for s in splits:
        for p in PARTS:
            for slide in s[p]:
                out.setdefault(slide, []).append(p)
    return {k: tuple(v) for k, v in out.items()}


def check_integrity(splits, table):
    case_of = dict(zip(table.slide_id, table.case_id))
    for s in splits:
        assert sorted(s["train"] + s["val"] + s["test"]) == sorted(table.slide_id)
        cases = [{case_of[x] for x in s[p]} for p in PARTS]
        assert not (cases[0] & cases[1] or cases[0] & cases[2] or cases[1] & cases[2])
        assert s["train"] and s["test"]


def test_added_cases_do_not_move_existing_slides(tmp_path):
    out = tmp_path / "splits"
    old = cohort(12)
    make_splits(old, CLASSES, out, given=None, **KW)
    first = read_splits(out)
    assert first == generate_splits(old, **KW)  # a fresh start is today's generation
    assert (out / ASSIGNMENT_FILE).is_file()
    settings, assignment = read_assignment(out / ASSIGNMENT_FILE)
    assert settings["seed"] == 0 and len(assignment) == 12

    new = pd.concat([old, cohort(2, start=12)])
    new = pd.concat([new, pd.DataFrame([{"case_id": "case13", "slide_id": "case13_s1",
                                         "label": "c1", "y": 1}])])
    added = sorted(set(new.slide_id) - set(old.slide_id))
    assert len(added) == 4  # case12 (2 slides), case13 (2 slides)
    # Snakemake deletes the declared output before rerunning the rule; the assignment stays.
    (out / "splits_summary.json").unlink()
    make_splits(new, CLASSES, out, given=None, **KW)
    second = read_splits(out)
    before, after = roles(first), roles(second)
    for slide in old.slide_id:
        assert after[slide] == before[slide], slide
    for slide in added:
        assert after[slide].count("test") == 1
    check_integrity(second, new)
    # Slides of one new case share their parts.
    assert after["case12_s0"] == after["case12_s1"] and after["case13_s0"] == after["case13_s1"]
    summary = json.loads((out / "splits_summary.json").read_text())
    assert sum(f["test"]["slides"] for f in summary["folds"]) == len(new)

    # Deterministic: the same inputs from the same assignment give the same folds.
    make_splits(new, CLASSES, out, given=None, **KW)
    assert read_splits(out) == second


def test_vanished_cases_are_dropped_and_others_stay(tmp_path):
    out = tmp_path / "splits"
    full = cohort(12)
    make_splits(full, CLASSES, out, given=None, **KW)
    before = roles(read_splits(out))
    fewer = full[full.case_id != "case05"]
    make_splits(fewer, CLASSES, out, given=None, **KW)
    after = roles(read_splits(out))
    assert set(after) == set(fewer.slide_id)
    assert all(after[s] == before[s] for s in after)
    assert "case05" not in read_assignment(out / ASSIGNMENT_FILE)[1]


@pytest.mark.parametrize("change", [{"seed": 1}, {"folds": 4}, {"val_fraction": 0.2}])
def test_changed_settings_regenerate(tmp_path, change):
    out = tmp_path / "splits"
    old, new = cohort(12), cohort(14)
    make_splits(old, CLASSES, out, given=None, **KW)
    kw = {**KW, **change}
    make_splits(new, CLASSES, out, given=None, **kw)
    assert read_splits(out) == generate_splits(new, **kw)
    assert read_assignment(out / ASSIGNMENT_FILE)[0][next(iter(change))] == next(iter(change.values()))


def test_unreadable_assignment_starts_over(tmp_path):
    out = tmp_path / "splits"
    out.mkdir()
    (out / ASSIGNMENT_FILE).write_text("garbage\n")
    table = cohort(12)
    make_splits(table, CLASSES, out, given=None, **KW)
    assert read_splits(out) == generate_splits(table, **KW)
