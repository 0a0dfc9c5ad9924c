"""`python -m vlscale.evaluate`: a released-style checkpoint (an HF folder, a big_vision .npz) on real sets
in their downloaded layouts, written in CLIP_benchmark's result layout, bad images counted."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, write_image
from vlscale import evaluate as cli
from vlscale import siglip
from vlscale.data.tokenizer import train_tokenizer

HIDDEN, LAYERS, HEADS, MLP, IMAGE_PX, PATCH, VOCAB, TEXT_LEN = 32, 1, 2, 64, 48, 16, 400, 12
WNIDS = ["n01440764", "n01443537", "n01751748"]  # tench, goldfish, sea snake


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    """A random transformers SiglipModel at 48 px / 12 tokens saved with save_pretrained, and a
    SentencePiece model beside it as spiece.model (as released folders ship one)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("hf")
    torch.manual_seed(0)
    common = dict(hidden_size=HIDDEN, intermediate_size=MLP, num_hidden_layers=LAYERS, num_attention_heads=HEADS)
    config = transformers.SiglipConfig(
        text_config=dict(**common, vocab_size=VOCAB, max_position_embeddings=TEXT_LEN, bos_token_id=None,
                         eos_token_id=None),
        vision_config=dict(**common, image_size=IMAGE_PX, patch_size=PATCH))
    transformers.SiglipModel(config).eval().save_pretrained(folder)
    corpus = [f"{a} photo of the {c}" for a in ("a", "the", "one") for c in
              ("tench", "goldfish", "sea snake", "dog", "cat", "bear", "room", "kitchen")] * 10
    train_tokenizer(corpus, 284, folder / "spiece.model")
    return folder


def _imagenet(root, broken=False):
    for n, wnid in enumerate(WNIDS):
        for k in range(2):
            write_image(root / wnid / f"ILSVRC2012_val_{n}{k}.JPEG", 3 * n + k)
    if broken:
        (root / WNIDS[0] / "ILSVRC2012_val_00.JPEG").write_bytes(b"truncated")


def _coco2017(root):
    images = [{"id": i, "file_name": f"{i:012d}.jpg"} for i in (139, 285, 632)]
    annotations = [{"image_id": im["id"], "id": 10 * im["id"] + k, "caption": f"a photo of the {c} {k}"}
                   for im, c in zip(images, ("room", "bear", "kitchen")) for k in range(2)]
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "captions_val2017.json").write_text(json.dumps({"images": images,
                                                                            "annotations": annotations}))
    for n, im in enumerate(images[:2]):  # the third image is missing on disk
        write_image(root / "val2017" / im["file_name"], n)


def test_an_hf_folder_on_real_sets_writes_clip_benchmark_results(hf_folder, tmp_path, capsys):
    _imagenet(tmp_path / "imagenet", broken=True)
    _coco2017(tmp_path / "coco")
    out = tmp_path / "out"
    code = cli.main([str(hf_folder), "--set", f"imagenet={tmp_path / 'imagenet'}", "--set",
                     f"coco={tmp_path / 'coco'}", "--out", str(out), "--batch-size", "4"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "imagenet/0shot" in printed and "coco/i2t" in printed and "s per 1,000" in printed

    name = hf_folder.name
    imagenet = json.loads((out / f"imagenet1k_{name}_siglip_w32_d1_p16_en_zeroshot_classification.json").read_text())
    assert imagenet["dataset"] == "imagenet1k" and imagenet["task"] == "zeroshot_classification"
    assert 0.0 <= imagenet["metrics"]["acc1"] <= 1.0
    v = imagenet["vlscale"]
    assert v["images"] == {"listed": 6, "evaluated": 5, "skipped": {"image does not decode": 1}}
    assert v["image_px"] == IMAGE_PX and v["text_len"] == TEXT_LEN and v["checkpoint_kind"] == "hf"
    assert v["tasks"]["imagenet/0shot"]["n"] == 5

    coco = json.loads((out / f"mscoco_captions_{name}_siglip_w32_d1_p16_en_zeroshot_retrieval.json").read_text())
    assert set(coco["metrics"]) == {f"{d}_retrieval_recall@{k}" for d in ("image", "text") for k in (1, 5, 10)}
    assert coco["vlscale"]["images"] == {"listed": 3, "evaluated": 2, "skipped": {"image missing on disk": 1}}
    assert "no Karpathy split file" in coco["vlscale"]["notes"]["split"]

    table = pd.read_csv(out / "results.csv")
    assert list(table.columns) == list(cli.TIDY_COLUMNS)
    acc = 1 - table.set_index("task").loc["imagenet/0shot", "value"] / 100
    assert acc == pytest.approx(imagenet["metrics"]["acc1"])


def test_strict_makes_a_bad_image_fatal_and_names_it(hf_folder, tmp_path, capsys):
    _imagenet(tmp_path / "imagenet", broken=True)
    code = cli.main([str(hf_folder), "--set", f"imagenet={tmp_path / 'imagenet'}", "--out", str(tmp_path / "o"),
                     "--strict"])
    assert code == 2
    assert "ILSVRC2012_val_00.JPEG: does not decode" in capsys.readouterr().err


def test_the_embeddings_are_the_released_tokenisation_of_the_prompts(hf_folder, tmp_path):
    """What the CLI embeds for a class is transformers' own tokenisation of the prompt, run through the model."""
    transformers = pytest.importorskip("transformers")
    import torch

    model, params = siglip.load(hf_folder)
    tok = cli._tokenizer(hf_folder, "hf", None)
    hf_tok = transformers.SiglipTokenizer(str(hf_folder / "spiece.model"))
    prompt = "itap of a sea snake."
    ids = tok.encode([prompt], TEXT_LEN)
    assert ids.tolist() == hf_tok([prompt], padding="max_length", max_length=TEXT_LEN, truncation=True)["input_ids"]
    hf_model = transformers.SiglipModel.from_pretrained(hf_folder).eval()
    with torch.no_grad():
        want = hf_model.get_text_features(input_ids=torch.from_numpy(ids).long())
    want = want.pooler_output if hasattr(want, "pooler_output") else want
    want = (want / want.norm(dim=-1, keepdim=True)).numpy()
    np.testing.assert_allclose(siglip.embed_texts(model, params, ids), want, atol=1e-5)


def test_a_npz_needs_its_config_and_tokenizer(hf_folder, tmp_path):
    model, params = siglip.load(hf_folder)
    siglip.save_npz(params, tmp_path / "w.npz")
    _imagenet(tmp_path / "imagenet")
    config = siglip.config_from_hf(json.loads((hf_folder / "config.json").read_text()))
    (tmp_path / "cfg.json").write_text(json.dumps(config))
    run = [sys.executable, "-m", "vlscale.evaluate", str(tmp_path / "w.npz"), "--set",
           f"imagenet={tmp_path / 'imagenet'}", "--out", str(tmp_path / "o")]
    r = subprocess.run(run, capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "a big_vision .npz holds only weights" in r.stderr
    r = subprocess.run(run + ["--config", str(tmp_path / "cfg.json")], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "no spiece.model beside the checkpoint; pass --tokenizer" in r.stderr
    r = subprocess.run(run + ["--config", str(tmp_path / "cfg.json"), "--tokenizer", str(hf_folder / "spiece.model")],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "imagenet/0shot" in r.stdout
    assert (tmp_path / "o" / "imagenet1k_w_siglip_w32_d1_p16_en_zeroshot_classification.json").is_file()


def test_a_bad_set_argument_is_named(hf_folder, capsys):
    assert cli.main([str(hf_folder), "--set", "cifar=/x"]) == 2
    assert "unknown set 'cifar'" in capsys.readouterr().err
    assert cli.main([str(hf_folder)]) == 2
    assert "nothing to evaluate" in capsys.readouterr().err
