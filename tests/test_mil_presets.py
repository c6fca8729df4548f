"""WSI task presets on fixture folders with the datasets' real naming schemes.

Names follow the public releases: CAMELYON16 `normal_001.tif` / `tumor_001.tif` /
`test_001.tif` + the official `reference.csv` (image, class Normal/Tumor, type, size; no
header row); BRACS `BRACS_<id>_<subtype>_<n>` (and WSI `BRACS_<id>` under `Type_<subtype>`) in
train/val/test folders; TCGA `TCGA-TSS-PPPP-01Z-00-DX1.<uuid>.svs` with a GDC sample sheet
(tab-separated: File ID, File Name, Data Category, Data Type, Project ID, Case ID, Sample ID,
Sample Type) or a GDC clinical.tsv (case_submitter_id, project_id).
"""

import uuid

import pandas as pd
import pytest

from pathgen.cli import main
from pathgen.config import ConfigError
from pathgen.config.evaluation import MilTaskConfig
from pathgen.mil.labels import read_labels
from pathgen.mil.preset_tasks import build_table, check_no_leakage, preset_splits, write_task
from pathgen.mil.splits import read_splits


def _touch(p):
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"")
    return p


def _assert_leak_free(splits, table):
    case_of = dict(zip(table["slide_id"], table["case_id"]))
    for s in splits:
        cases = [{case_of[x] for x in s[p]} for p in ("train", "val", "test")]
        assert not (cases[0] & cases[1] or cases[0] & cases[2] or cases[1] & cases[2])
        assert sorted(s["train"] + s["val"] + s["test"]) == sorted(table["slide_id"])


# -- CAMELYON16 ------------------------------------------------------------------------------
C16_TEST = {"test_001": "Tumor", "test_002": "Tumor", "test_003": "Normal", "test_004": "Normal",
            "test_005": "Normal", "test_006": "Tumor"}


def _c16(root, header=False, ref_rows=C16_TEST):
    for i in range(1, 13):
        _touch(root / "training" / "normal" / f"normal_{i:03d}.tif")
    for i in range(1, 9):
        _touch(root / "training" / "tumor" / f"tumor_{i:03d}.tif")
    for name in C16_TEST:
        _touch(root / "testing" / "images" / f"{name}.tif")
    _touch(root / "training" / "lesion_annotations" / "tumor_001.xml")   # not a slide
    lines = ["image,class,type,size"] if header else []
    lines += [f"{k},{v},{'Macro' if v == 'Tumor' else ''},{'' if v == 'Normal' else 'Wide'}"
              for k, v in ref_rows.items()]
    (root / "testing" / "reference.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.parametrize("header", [False, True])
def test_camelyon16_labels_and_official_test_splits(tmp_path, header):
    root = _c16(tmp_path / "c16", header)
    _, table = build_table("camelyon16", root)
    lab = dict(zip(table.slide_id, table.label))
    assert len(table) == 26 and lab["normal_007"] == "normal" and lab["tumor_008"] == "tumor"
    assert {k: lab[k] for k in C16_TEST} == {k: v.lower() for k, v in C16_TEST.items()}
    assert (table.case_id == table.slide_id).all()                       # one slide per patient
    assert set(table.loc[table.part == "test", "slide_id"]) == set(C16_TEST)
    splits = preset_splits(table, ["normal", "tumor"], 5, 0.1, seed=0)
    assert len(splits) == 5
    for s in splits:
        assert s["test"] == sorted(C16_TEST)                             # official test set
        assert len(s["val"]) == 2 and {lab[x] for x in s["val"]} == {"normal", "tumor"}
    assert len({tuple(s["val"]) for s in splits}) > 1                     # seeds draw different val
    _assert_leak_free(splits, table)
    assert preset_splits(table, ["normal", "tumor"], 5, 0.1, seed=0) == splits   # seeded


def test_camelyon16_reference_errors(tmp_path):
    root = _c16(tmp_path / "c16", ref_rows={k: v for k, v in C16_TEST.items() if k != "test_004"})
    with pytest.raises(ConfigError, match=r"test_004.*reference"):
        build_table("camelyon16", root)
    (root / "testing" / "reference.csv").unlink()
    with pytest.raises(ConfigError, match="--reference"):
        build_table("camelyon16", root)


# -- BRACS -----------------------------------------------------------------------------------
BRACS = {  # official part -> files (subtype in the name, as the release names them)
    "train": ["BRACS_1003_N_1", "BRACS_1003_UDH_2", "BRACS_1010_PB_1", "BRACS_1020_FEA_1",
              "BRACS_1021_ADH_3", "BRACS_1030_DCIS_1", "BRACS_1031_IC_2"],
    "val": ["BRACS_1100_N_1", "BRACS_1101_ADH_1", "BRACS_1102_IC_1"],
    "test": ["BRACS_1200_UDH_1", "BRACS_1201_FEA_2", "BRACS_1202_DCIS_1"],
}


def test_bracs_seven_subtypes_to_three_classes_official_split(tmp_path):
    root = tmp_path / "BRACS_WSI"
    for part, names in BRACS.items():
        for n in names:
            _touch(root / part / f"{n}.svs")
    _touch(root / "train" / "Group_AT" / "Type_ADH" / "BRACS_264.svs")   # WSI name, subtype from folder
    _, table = build_table("bracs", root)
    lab = dict(zip(table.slide_id, table.label))
    assert lab == {**{n: {"N": "benign", "PB": "benign", "UDH": "benign", "FEA": "atypical", "ADH": "atypical",
                          "DCIS": "malignant", "IC": "malignant"}[n.split("_")[2]]
                      for names in BRACS.values() for n in names}, "BRACS_264": "atypical"}
    case = dict(zip(table.slide_id, table.case_id))
    assert case["BRACS_1003_N_1"] == case["BRACS_1003_UDH_2"] == "BRACS_1003"
    splits = preset_splits(table, ["benign", "atypical", "malignant"], 5, 0.1, seed=0)
    assert len(splits) == 1 and splits[0]["val"] == sorted(BRACS["val"])
    assert splits[0]["test"] == sorted(BRACS["test"]) and "BRACS_264" in splits[0]["train"]
    _assert_leak_free(splits, table)


def test_bracs_without_official_folders_gets_patient_level_folds(tmp_path):
    root = tmp_path / "bracs_flat"
    for i in range(12):
        for sub, roi in (("N", 1), ("IC", 2), ("FEA", 3)):
            _touch(root / f"BRACS_{2000 + i}_{sub}_{roi}.svs")
    _, table = build_table("bracs", root)
    assert table.case_id.nunique() == 12 and set(table.part) == {""}
    splits = preset_splits(table, ["benign", "atypical", "malignant"], 3, 0.2, seed=1)
    assert len(splits) == 3
    _assert_leak_free(splits, table)


def test_bracs_mixed_layout_is_an_error(tmp_path):
    _touch(tmp_path / "b" / "train" / "BRACS_1_N_1.svs")
    _touch(tmp_path / "b" / "BRACS_2_IC_1.svs")
    with pytest.raises(ConfigError, match="official folder layout"):
        build_table("bracs", tmp_path / "b")


# -- TCGA ------------------------------------------------------------------------------------
def _uid(i):
    return str(uuid.UUID(int=i))


def _tcga(root, projects: dict[str, str], n_per=6):
    """Patients TCGA-<TSS>-<NNNN> per project; every third with a second DX slide."""
    rows = []
    for j, (proj, tss) in enumerate(projects.items()):
        for i in range(n_per):
            patient = f"TCGA-{tss}-{1000 + i:04d}"
            for dx in (1, 2) if i % 3 == 0 else (1,):
                name = f"{patient}-01Z-00-DX{dx}.{_uid(j * 100 + i * 3 + dx)}.svs"
                _touch(root / _uid(j * 1000 + i * 3 + dx) / name)        # GDC client: <file uuid>/<file>
                rows.append({"File ID": _uid(j * 1000 + i * 3 + dx), "File Name": name,
                             "Data Category": "Biospecimen", "Data Type": "Slide Image",
                             "Project ID": proj, "Case ID": patient, "Sample ID": f"{patient}-01Z",
                             "Sample Type": "Primary Tumor"})
    return rows


def test_tcga_nsclc_from_gdc_sample_sheet(tmp_path):
    root = tmp_path / "gdc"
    rows = _tcga(root, {"TCGA-LUAD": "05", "TCGA-LUSC": "18", "TCGA-BRCA": "A1"})
    _touch(root / "x" / f"TCGA-05-1000-01A-01-TS1.{_uid(9999)}.svs")       # frozen section: not DX
    pd.DataFrame(rows).to_csv(tmp_path / "gdc_sample_sheet.tsv", sep="\t", index=False)
    _, table = build_table("tcga_nsclc", root, manifest=tmp_path / "gdc_sample_sheet.tsv")
    assert set(table.label) == {"LUAD", "LUSC"} and len(table) == 16         # BRCA and TS1 left out
    assert (table.case_id == table.slide_id.str[:12]).all()
    assert dict(zip(table.slide_id.str[:7], table.label))["TCGA-05"] == "LUAD"
    assert table.groupby("case_id").size().max() == 2
    splits = preset_splits(table, ["LUAD", "LUSC"], 3, 0.25, seed=0)
    assert len(splits) == 3
    _assert_leak_free(splits, table)
    check_no_leakage(splits, table)


def test_tcga_rcc_from_clinical_table(tmp_path):
    root = tmp_path / "gdc"
    rows = _tcga(root, {"TCGA-KIRC": "B0", "TCGA-KIRP": "2K", "TCGA-KICH": "KL"}, n_per=5)
    clin = pd.DataFrame({"case_submitter_id": sorted({r["Case ID"] for r in rows}),
                         "project_id": [r["Project ID"] for r in
                                        sorted({r["Case ID"]: r for r in rows}.values(), key=lambda r: r["Case ID"])],
                         "age_at_index": "'--"})
    clin.to_csv(tmp_path / "clinical.tsv", sep="\t", index=False)
    _, table = build_table("tcga-rcc", root, manifest=tmp_path / "clinical.tsv")
    assert table.groupby("label").case_id.nunique().to_dict() == {"KICH": 5, "KIRC": 5, "KIRP": 5}
    splits = preset_splits(table, ["KIRC", "KIRP", "KICH"], 5, 0.2, seed=3)
    _assert_leak_free(splits, table)
    with pytest.raises(ConfigError, match="needs --manifest"):
        build_table("tcga_rcc", root)
    pd.DataFrame({"case_submitter_id": ["TCGA-B0-1000"]}).to_csv(tmp_path / "bad.tsv", sep="\t", index=False)
    with pytest.raises(ConfigError, match="project column"):
        build_table("tcga_rcc", root, manifest=tmp_path / "bad.tsv")


def test_leakage_check_rejects_a_patient_in_two_parts():
    table = pd.DataFrame({"case_id": ["P1", "P1", "P2"], "slide_id": ["a", "b", "c"]})
    with pytest.raises(ConfigError, match="patient P1"):
        check_no_leakage([{"train": ["a", "c"], "val": [], "test": ["b"]}], table)


# -- CLI + config preset ----------------------------------------------------------------------
def test_cli_writes_labels_and_splits_for_a_config_preset_task(tmp_path, capsys):
    root = _c16(tmp_path / "c16")
    out = tmp_path / "task" / "labels.csv"
    assert main(["mil-labels", "--preset", "camelyon16", "--slides-dir", str(root), "--out", str(out),
                 "--folds", "3"]) == 0
    assert "preset: camelyon16" in capsys.readouterr().out
    task = MilTaskConfig(preset="camelyon16", labels=out, splits=tmp_path / "task" / "splits")
    assert task.classes == ["normal", "tumor"] and task.val_fraction == 0.1
    table = read_labels(task.labels, task.classes)
    splits = read_splits(task.splits)
    assert len(splits) == 3 and all(s["test"] == sorted(C16_TEST) for s in splits)
    _assert_leak_free(splits, table)
    assert MilTaskConfig(preset="bracs", labels=out, classes=["a", "b"]).classes == ["a", "b"]  # own keys win
    with pytest.raises(ValueError, match="did you mean 'camelyon16'"):
        MilTaskConfig(preset="camelyon", labels=out)
    assert main(["mil-labels", "--preset", "bracs", "--slides-dir", str(tmp_path / "none"), "--out",
                 str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_write_task_summary(tmp_path):
    root = _c16(tmp_path / "c16")
    s = write_task("camelyon16", root, tmp_path / "l.csv", None)
    assert s["slides"] == 26 and s["per_class"] == {"normal": 15, "tumor": 11} and "splits" not in s
