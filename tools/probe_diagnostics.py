"""What a trained run's image embeddings hold, beyond the benchmarks' protocols: a diagnostic of the design probes.

    python tools/probe_diagnostics.py ../design/a5 [../design/g25 ...] [--run probe]

For the last cool-down checkpoint of run `--run` in each checkout (params.yaml, data/tokenizer, runs/), on the
development key's analogs:
- ImageNet-like 10-shot accuracy of the linear probe (evals/protocols.linear_probe_hits) at ridge strengths 2^0 ..
  2^13 (the benchmark's protocol fixes big_vision's 2^10): how much of the 10-shot level is the probe's;
- perceived gender from a linear probe on the image embeddings, fitted on half of the FairFace-like images (200
  per gender) and scored on the other half: whether the images encode gender at all, whatever the text tower does;
  beside it the same probe for the figure's occupation (its colour; 20 shots per occupation);
- the cosine between the text embeddings of the two gender words, and of "<gender word> <occupation>" for the two
  genders: whether the text tower tells the genders apart.
Appends one row per checkout to results/reference/ladder/diagnostics_dev.csv.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ladder import OUT  # noqa: E402

CSV = OUT / "diagnostics_dev.csv"
RIDGES = (0, 4, 7, 10, 13)  # log2 of the ridge strengths


def diagnose(clone: Path, run: str) -> dict:

    from vlscale import siglip
    from vlscale.config import load_params
    from vlscale.data.tokenizer import Tokenizer
    from vlscale.evals.analog_eval import analog_suite
    from vlscale.evals.protocols import linear_probe_hits
    from vlscale.runs.layout import RunDir
    from vlscale.runs.settings import resolve
    from vlscale.world.render import render_jax, render_padded
    from vlscale.world.spec import GENDER_WORDS, GENDERS, OCCUPATIONS, build_world
    from vlscale.world.truth import truth

    p = load_params(clone / "params.yaml")
    world, px = build_world(p.world), p.train.image_px
    sizes = p.evaluate.analogs
    suite = analog_suite(world, px, {"imagenet": sizes["imagenet"], "fairface": sizes["fairface"]},
                         {"imagenet": p.evaluate.train_sizes["imagenet"]}, key=p.evaluate.keys.dev,
                         progress=lambda *_: None)
    model_config = resolve(p, run).model.model_dump()
    model_config = {**model_config, "text": {**model_config["text"], "vocab_size": p.tokenizer.vocab_size}}
    seen, checkpoint = RunDir(clone / "runs" / run).cooled_down()[-1]
    model, params = siglip.load(checkpoint, model_config, image_size_px=px, text_len=p.tokenizer.max_len)
    render = render_jax(world, px)

    def embed(ids):
        x = render_padded(render, ids, 512)
        return np.concatenate([np.asarray(siglip.embed_images(model, params, x[i:i + 512]))
                               for i in range(0, len(x), 512)])

    train, test = suite.train["imagenet"], suite.test["imagenet"]
    tz, z = embed(train.ids), embed(test.ids)
    row = {"checkout": clone.name, "run": run, "examples_seen": seen, "embedding_dim": int(z.shape[1])}
    for k in RIDGES:
        hits = linear_probe_hits(tz, train.labels, z, test.labels, len(test.class_names), l2=2.0**k)
        row[f"imagenet_10shot_l2_2^{k}"] = round(100 * float(hits.mean()), 2)
    faces = suite.test["fairface"]
    fz, y = embed(faces.ids), np.asarray(faces.labels)
    half = np.arange(len(y)) % 2 == 0
    row["gender_linear_probe"] = round(100 * float(linear_probe_hits(fz[half], y[half], fz[~half], y[~half], 2,
                                                                     shots=200).mean()), 2)
    # the same images' occupation (the figure's colour): what the towers do learn of a person
    occupation = np.asarray(truth(world, faces.ids)["occupation"])
    row["occupation_linear_probe"] = round(100 * float(linear_probe_hits(
        fz[half], occupation[half], fz[~half], occupation[~half], len(OCCUPATIONS), shots=20).mean()), 2)
    # the text tower's two gender prompts, and a caption's person words told apart by gender alone
    tokenizer = Tokenizer(clone / "data/tokenizer/spm.model")
    words = [GENDER_WORDS[g] for g in GENDERS]
    texts = words + [f"{w} {OCCUPATIONS[0]}" for w in words]
    t = np.asarray(siglip.embed_texts(model, params, tokenizer.encode(texts, p.tokenizer.max_len)))
    row["text_cosine_gender_words"] = round(float(t[0] @ t[1]), 3)
    row["text_cosine_person_words"] = round(float(t[2] @ t[3]), 3)
    return row


def main(argv=None):
    import pandas as pd

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkouts", type=Path, nargs="+")
    parser.add_argument("--run", default="probe")
    args = parser.parse_args(argv)
    rows = pd.read_csv(CSV).to_dict("records") if CSV.exists() else []
    for clone in args.checkouts:
        row = diagnose(clone.resolve(), args.run)
        print(row, flush=True)
        rows = [r for r in rows if (r["checkout"], r["run"]) != (row["checkout"], row["run"])] + [row]
    pd.DataFrame(rows).to_csv(CSV, index=False)
    print(CSV)


if __name__ == "__main__":
    main()
