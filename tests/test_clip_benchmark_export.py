"""CLIP_benchmark interop: the export is read through CLIP_benchmark's documented wds contract,
results JSONs carry its keys, and its real CLI scores the exported demo set as pathgen does.

The reader side follows CLIP_benchmark's README/builder docstring (``wds/<name>``):
``<root>/test/nshards.txt`` = N, shards ``<root>/test/{0..N-1}.tar`` with ``<key>.webp|png|jpg``
+ ``<key>.cls``; ``<root>/classnames.txt`` (one per line, label order) and
``<root>/zeroshot_classification_templates.txt`` (``template.format(c=classname)``);
``--custom_template_file`` JSON ``{dataset: [templates] | {classname: [prompts]}}``.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import webdataset as wds
from PIL import Image

from pathgen.config import validate_config
from pathgen.config.evaluation import ZeroShotBenchmark
from pathgen.zeroshot.benchmarks import resolve_benchmark
from pathgen.zeroshot.clip_benchmark import c_template, export_dataset, single_classnames_templates
from pathgen.zeroshot.loaders import load_samples
from pathgen.zeroshot.prompts import ensemble_prompts

REPO = Path(__file__).resolve().parent.parent


def _image(path: Path, value: int, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(path, format=fmt)


def _read_wds(root: Path) -> tuple[list[np.ndarray], list[int], list[str], list[str]]:
    """CLIP_benchmark's reader contract, with the webdataset library."""
    n = int((root / "test" / "nshards.txt").read_text())
    pattern = str(root / "test" / ("{0..%d}.tar" % (n - 1)))
    ds = wds.WebDataset(pattern, shardshuffle=False).decode("pil").to_tuple("webp;png;jpg;jpeg", "cls")
    images, labels = zip(*[(np.asarray(im.convert("RGB")), int(c)) for im, c in ds])
    classnames = [ln.strip() for ln in (root / "classnames.txt").read_text().splitlines()]
    templates = [ln.strip() for ln in
                 (root / "zeroshot_classification_templates.txt").read_text().splitlines()]
    return list(images), list(labels), classnames, templates


def test_templates_become_format_c():
    assert c_template("An H&E image of {}.") == "An H&E image of {c}."
    assert c_template("an image of CLASSNAME.").format(c="fat") == "an image of fat."
    assert c_template("{x} shows {}").format(c="fat") == "{x} shows fat"  # other braces kept


def test_export_is_what_clip_benchmark_reads(tmp_path):
    root = tmp_path / "bench"
    # classes.json order (tumor, adipose) differs from folder-sorted order (adipose, tumor);
    # .tif is not a format CLIP_benchmark decodes: it must arrive as lossless PNG
    for i in range(3):
        _image(root / "tumor" / f"t{i}.png", i)
        _image(root / "adipose" / f"a{i}.tif", 10 + i, "TIFF")
    (root / "classes.json").write_text(json.dumps({"tumor": "tumor epithelium", "adipose": "fat"}))
    (root / "template").write_text("An H&E image of {}.\n")
    (root / "prompts_conch.json").write_text(json.dumps({"0": {
        "classnames": {"tumor": ["tumor epithelium", "carcinoma"]},
        "templates": ["a photo of CLASSNAME.", "an H&E image of CLASSNAME."]}}))
    bm = resolve_benchmark("demo", ZeroShotBenchmark(root=root))
    samples = load_samples(bm)
    out = tmp_path / "wds" / "demo"
    info = export_dataset(bm, samples, out, shard_size=4)
    assert info["n_shards"] == 2 and (out / "test" / "nshards.txt").read_text().strip() == "2"

    images, labels, classnames, templates = _read_wds(out)
    assert labels == samples.labels.tolist() and labels == [0, 0, 0, 1, 1, 1]
    for got, i in zip(images, range(len(samples))):
        assert np.array_equal(got, np.asarray(samples.image(i)))  # same pixels
    assert classnames == ["tumor epithelium", "fat"]  # label order, not folder order
    assert [t.format(c=c) for c in classnames for t in templates] == [
        bm.single_prompts[c] for c in bm.classes]
    ens = json.loads((out / "ensemble_templates.json").read_text())["demo"]
    ours = ensemble_prompts(bm)
    assert list(ens) == classnames and [ens[bm.class_texts[c]] for c in bm.classes] == [
        ours[c] for c in bm.classes]


def test_per_class_prompts_export_as_names_with_bare_template(tmp_path):
    for code in ("tumor", "normal"):
        _image(tmp_path / code / "a.png", 1)
    bm = resolve_benchmark("w", ZeroShotBenchmark(root=tmp_path, prompts={
        "tumor": "An H&E image of tumor tissue.", "normal": "An H&E image of normal tissue."}))
    names, templates = single_classnames_templates(bm)
    assert templates == ["{c}"] and [t.format(c=n) for n in names for t in templates] == [
        bm.single_prompts[c] for c in bm.classes]


def test_cli_exports_dataset_model_folder_and_commands(tmp_path, capsys):
    from pathgen.cli import main

    for k, code in enumerate(("tumor", "normal")):
        for i in range(2):
            _image(tmp_path / "bench" / code / f"{i}.jpg", 5 * k + i, "JPEG")
    rc = main(["zeroshot-export", "--data", str(tmp_path / "bench"), "--name", "mini",
               "--results-dir", str(tmp_path / "res"), "--model", "tiny-demo", "--shard-size", "3"])
    assert rc == 0
    root = tmp_path / "res" / "eval" / "clip_benchmark" / "wds" / "mini"
    with tarfile.open(root / "test" / "0.tar") as tar:
        assert tar.getnames() == ["00000000.jpg", "00000000.cls", "00000001.jpg", "00000001.cls",
                         "00000002.jpg", "00000002.cls"]  # JPEG bytes kept as they are
    out = capsys.readouterr().out
    folder = tmp_path / "res" / "eval" / "clip_benchmark" / "models" / "tiny-demo"
    assert f"--model local-dir:{folder.resolve()}" in out and "--dataset wds/mini" in out
    cfg = json.loads((folder / "open_clip_config.json").read_text())
    assert cfg["model_cfg"]["vision_cfg"]["image_size"] == 64 and "mean" in cfg["preprocess_cfg"]
    # open_clip builds it from the folder alone, with the weights pathgen scores with
    import open_clip

    from pathgen.encoders import load_encoder

    model, _, _ = open_clip.create_model_and_transforms(f"local-dir:{folder}")
    ref = load_encoder("tiny-demo").model.state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in model.state_dict().items())


def test_open_clip_names_are_loadable_forms(tmp_path):
    from pathgen.config.features import EncoderSpec
    from pathgen.zeroshot.clip_benchmark import model_arguments, open_clip_names

    assert open_clip_names(EncoderSpec(arch="ViT-B-16", pretrained="laion2b_s34b_b88k")) == (
        "ViT-B-16", "laion2b_s34b_b88k")  # a tag stays a tag
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "epoch_3.pt").write_bytes(b"")
    assert open_clip_names(EncoderSpec(arch="ViT-B-16", pretrained=str(tmp_path / "weights"))) == (
        "ViT-B-16", str((tmp_path / "weights" / "epoch_3.pt").resolve()))
    (tmp_path / "oc").mkdir()
    (tmp_path / "oc" / "open_clip_config.json").write_text("{}")
    assert open_clip_names(EncoderSpec(arch="ViT-B-16", pretrained=str(tmp_path / "oc")))[0] == \
        f"local-dir:{(tmp_path / 'oc').resolve()}"
    # a stock arch with a checkpoint file goes to clip_benchmark by name, no folder needed
    assert model_arguments(EncoderSpec(arch="ViT-B-16", pretrained=str(tmp_path / "weights"))) == (
        "ViT-B-16", str((tmp_path / "weights" / "epoch_3.pt").resolve()))


def _tiny_checkpoint(path: Path) -> Path:
    """A checkpoint of the demo architecture in the format training writes (bare state_dict)."""
    from pathgen.encoders import load_encoder

    torch.manual_seed(3)
    enc = load_encoder("tiny-demo")
    for p in enc.model.parameters():  # weights unlike the seed-0 random init
        p.data.add_(0.02 * torch.randn_like(p))
    torch.save(enc.model.state_dict(), path)
    return path


def _demo_checkpoint(root: Path, path: Path, steps: int = 12) -> Path:
    """A demo-architecture checkpoint with signal: a few open_clip ClipLoss steps on demo
    patches paired with their class prompts. It only has to make varied, mostly right
    predictions so that equal acc1 means equal scoring (an interop check, not an evaluation)."""
    from open_clip.loss import ClipLoss

    from pathgen.encoders import load_encoder

    bm = resolve_benchmark("demo", ZeroShotBenchmark(root=root, max_images=120))
    s = load_samples(bm)
    enc = load_encoder("tiny-demo")
    model = enc.model.train()
    images = torch.stack([enc.preprocess(s.image(i)) for i in range(len(s))])
    texts = enc.tokenizer([bm.single_prompts[bm.classes[k]] for k in s.labels])
    opt, loss_fn = torch.optim.AdamW(model.parameters(), lr=5e-4), ClipLoss()
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randperm(len(s), generator=g)[:32]
        img_f, txt_f, scale = model(images[idx], texts[idx])[:3]
        loss = loss_fn(img_f, txt_f, scale)
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.save(model.eval().state_dict(), path)
    return path


def _cfg(tmp_path, root, ckpt, bootstrap=20):
    return validate_config({
        "results_dir": str(tmp_path / "results"),
        "encoders": {"demo-ckpt": {"kind": "open_clip", "arch": "pathgen-tiny-vit",
                                   "pretrained": str(ckpt)}},
        "evaluation": {"zeroshot": {"benchmarks": {"demo": {"root": str(root)}}, "device": "cpu",
                                    "models": ["demo-ckpt"], "bootstrap": bootstrap}}})


def test_results_json_names_a_loadable_model(tmp_path):
    import open_clip

    from pathgen.zeroshot.workflow import evaluate_benchmark

    root = tmp_path / "bench"
    for k, code in enumerate(("tumor", "normal")):
        for i in range(3):
            _image(root / code / f"{i}.png", 40 * k + i)
    ckpt = _tiny_checkpoint(tmp_path / "final.pt")
    r = evaluate_benchmark(_cfg(tmp_path, root, ckpt), "demo", "demo-ckpt")["single"]
    assert r["model"] == "pathgen-tiny-vit" and r["pretrained"] == str(ckpt.resolve())
    assert r["pathgen_encoder"] == "demo-ckpt" and r["pathgen_weights"].startswith("sha256:")
    assert all(isinstance(v, float) for v in r["metrics"].values())  # numbers only
    assert "ci95" not in r["metrics"] and set(r["ci95"]) >= {"accuracy", "balanced_accuracy"}
    model, _, _ = open_clip.create_model_and_transforms(r["model"], pretrained=r["pretrained"])
    assert torch.equal(model.state_dict()["visual.proj"], torch.load(ckpt)["visual.proj"])


# -- the real CLI --------------------------------------------------------------------------------
CB_VERSION = "1.6.2"
VENV = REPO / ".cache" / "clip-benchmark-venv"


def _pypi_reachable() -> bool:
    try:
        urllib.request.urlopen("https://pypi.org/simple/clip-benchmark/", timeout=15).close()
        return True
    except OSError:
        return False


def _clip_benchmark_venv() -> Path:
    """A separate venv with clip-benchmark 1.6.2, cached under the repo's ignored .cache/."""
    import open_clip
    import torchvision

    exe = VENV / "bin" / "clip_benchmark"
    ready = VENV / "pathgen-ready"
    if ready.exists() and exe.exists():
        return exe
    if not _pypi_reachable():
        pytest.skip("PyPI (https://pypi.org) unreachable: cannot install clip-benchmark")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    pins = [f"clip-benchmark=={CB_VERSION}", "numpy<2.4", "requests",
            f"torch=={torch.__version__.split('+')[0]}",
            f"torchvision=={torchvision.__version__.split('+')[0]}",
            f"open_clip_torch=={open_clip.__version__}"]
    subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", *pins], check=True)
    ready.write_text("\n".join(pins) + "\n")
    return exe


@pytest.mark.slow
def test_clip_benchmark_cli_scores_the_export_as_pathgen(tmp_path):
    """Runs the real ``clip_benchmark eval`` (clip-benchmark 1.6.2) on the exported demo set
    with a briefly trained demo-architecture checkpoint and asserts its acc1 (and mean per-class
    recall, acc5) equals pathgen's, for single and ensemble prompting.

    Version: 1.6.2 (latest) with numpy<2.4 (2.3.x). Its accuracy() does
    ``float(tensor.cpu().numpy())`` on a 1-element 1-d array, which numpy 2.4 rejects
    ("only 0-dimensional arrays can be converted to Python scalars"); it also imports
    ``requests`` without declaring it. torch/torchvision/open_clip_torch are pinned to this
    environment's versions so both sides run the same kernels; ``--no_amp`` keeps it fp32 like
    pathgen on CPU."""
    from pathgen.demo.benchmark import demo_benchmark
    from pathgen.demo.generate import generate_demo
    from pathgen.demo.workflow import holdout_sources
    from pathgen.zeroshot.workflow import config_export
    from pathgen.zeroshot.workflow import evaluate_benchmark

    exe = _clip_benchmark_venv()
    demo = validate_config({"results_dir": str(tmp_path / "res"),
                            "demo": {"out_dir": str(tmp_path / "demo"), "n_slides": 4,
                                     "width_px": 1536, "height_px": 1024, "holdout_fraction": 0.5,
                                     "zeroshot_min_purity": 0.75},
                            "tiling": {"patch_size_um": 64, "target_mpp": 1.0}})
    generate_demo(demo.demo)
    src = holdout_sources(demo)
    demo_benchmark(demo.demo, demo.tiling, src["slides"], src["regions"], tmp_path / "demo" / "zeroshot")
    bench = tmp_path / "demo" / "zeroshot"
    torch.set_num_threads(1)
    cfg = _cfg(tmp_path, bench, _demo_checkpoint(bench, tmp_path / "final.pt"), 0)
    ours = evaluate_benchmark(cfg, "demo", "demo-ckpt")
    preds = pd.read_csv(tmp_path / "results/eval/zeroshot/demo/demo-ckpt/predictions_single.csv")
    assert preds["pred"].nunique() >= 3  # varied predictions: equal acc1 is informative
    info = config_export(cfg, "demo", ["demo-ckpt"])
    # clip_benchmark has no --device: it takes CUDA when visible; both sides run on the CPU
    env = {**os.environ, "PATH": f"{exe.parent}{os.pathsep}{os.environ['PATH']}",
           "CUDA_VISIBLE_DEVICES": ""}
    for mode in ("single", "ensemble"):
        argv = shlex.split(info["commands"]["demo-ckpt"][mode])
        out = Path(argv[argv.index("--output") + 1])
        run = subprocess.run([str(exe), *argv[1:]], env=env, cwd=tmp_path, capture_output=True,
                             text=True)
        assert run.returncode == 0, f"clip_benchmark failed:\n{run.stderr[-3000:]}"
        theirs = json.loads(out.read_text())["metrics"]
        mine = ours[mode]["metrics"]
        print(f"{mode}: pathgen acc1={mine['acc1']:.6f} clip_benchmark acc1={theirs['acc1']:.6f} "
              f"(n={ours[mode]['n_images']})")
        assert theirs["acc1"] == pytest.approx(mine["acc1"], abs=1e-12)
        assert theirs["mean_per_class_recall"] == pytest.approx(mine["balanced_accuracy"], abs=1e-12)
        assert (math.isnan(theirs["acc5"]) and math.isnan(mine["acc5"])) or \
            theirs["acc5"] == pytest.approx(mine["acc5"])
