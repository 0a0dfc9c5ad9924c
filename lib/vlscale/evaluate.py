"""Evaluate any SigLIP checkpoint on real evaluation sets and on the synthetic analogs.

    python -m vlscale.evaluate google-siglip-base-patch16-224/ --set imagenet=/data/imagenet/val \
        --set coco=/data/coco --set xm3600=/data/xm3600
    python -m vlscale.evaluate webli_en_b16_224_63724782.npz --config b16.json --tokenizer spiece.model \
        --set imagenet=/data/imagenet/val
    python -m vlscale.evaluate runs/s100/cooldown/seen_000000199936 --analogs

The checkpoint is a Hugging Face SigLIP folder (its config.json and spiece.model are read), a big_vision
.npz (with --config, a JSON or YAML file of its big_vision model config, and --tokenizer), or one of our
trainer's checkpoints (its saved model config; the tokenizer stage's data/tokenizer/spm.model). Image
and text sizes are read from the checkpoint. Released checkpoints are tokenised as they were trained
(canonical text, eos, eos padding: data/tokenizer.Tokenizer.released_siglip); ours with our conventions.

Real sets (--set NAME=FOLDER; names: imagenet, coco, flickr, xm3600, xtd10, xflickrco, dollarstreet,
geode, gldv2, fairface) are read in their official layouts (evals/real_sets.py). An image missing on
disk or one that does not decode is left out and counted per reason (listed = evaluated + skipped);
--strict makes either fatal. --analogs adds the synthetic analogs of params.yaml's profile.

Writes under --out (default results/eval_cli/<checkpoint name>):
    <dataset>_<pretrained>_<model>_<language>_<task>.json   CLIP_benchmark's result layout, one per dataset
                                                            and language ("metrics": acc1, or
                                                            image/text_retrieval_recall@k), plus a
                                                            "vlscale" block: every task, the image
                                                            accounting, notes, timings, provenance
    results.csv, results.parquet                            the tidy rows (dataset, language, task, metric,
                                                            value, se, n)
and prints a summary table.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import pandas as pd

from vlscale import siglip
from vlscale.config import load_params
from vlscale.data.tokenizer import TOKENIZER_PATH, Tokenizer
from vlscale.evals import names, real_eval
from vlscale.evals.analog_eval import analog_suite, evaluate_analog
from vlscale.evals.embedder import Embedder, Prompts
from vlscale.files import write_json
from vlscale.provenance import provenance
from vlscale.world.spec import build_world

TIDY_COLUMNS = ("dataset", "language", "task", "metric", "value", "se", "n")
# Our dataset names -> CLIP_benchmark's, for the result file names.
CLIP_BENCHMARK_NAMES = {"imagenet": "imagenet1k", "coco": "mscoco_captions", "flickr": "flickr30k",
                        "xm3600": "crossmodal3600", "xtd10": "xtd10", "xflickrco": "xflickrco"}
RETRIEVAL = re.compile(r"^(?P<set>[^/]+)/(?:(?P<lang>[^/]+)/)?(?P<dir>i2t|t2i)(?:@(?P<k>\d+))?$")
XM3600_RETRIEVAL = re.compile(r"^xm3600/(?P<dir>i2t|t2i)/(?P<lang>[^/]+)$")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m vlscale.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="an HF SigLIP folder, a big_vision .npz, or one of our checkpoints")
    parser.add_argument("--config", help="JSON or YAML big_vision model config (needed for a .npz)")
    parser.add_argument("--tokenizer", help="SentencePiece model (default: the HF folder's spiece.model, or "
                                            "data/tokenizer/spm.model for our checkpoints)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=FOLDER", help="a real set to evaluate")
    parser.add_argument("--analogs", action="store_true", help="also the synthetic analogs of --params")
    parser.add_argument("--params", default="params.yaml", help="params for --analogs (default params.yaml)")
    parser.add_argument("--templates", default="clip7",
                        help="prompt ensemble of the real sets: a name in evals/data/templates.json (default clip7)")
    parser.add_argument("--px", type=int, help="image size (default: the checkpoint's)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--shots", type=int, default=10)
    parser.add_argument("--strict", action="store_true", help="a missing or undecodable image is an error")
    parser.add_argument("--out", help="output folder (default results/eval_cli/<checkpoint name>)")
    args = parser.parse_args(argv)
    try:
        summary = evaluate(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(summary)
    return 0


def _real_sets(pairs: list[str]) -> dict[str, Path]:
    sets = {}
    for pair in pairs:
        name, sep, folder = pair.partition("=")
        if not sep or not folder:
            raise ValueError(f"--set {pair!r}: expected NAME=FOLDER, e.g. imagenet=/data/imagenet/val")
        if name not in real_eval.LOADERS:
            raise ValueError(f"--set {pair!r}: unknown set {name!r}; expected one of {sorted(real_eval.LOADERS)}")
        sets[name] = Path(folder)
    return sets


def _read_config(path: str | None):
    if path is None:
        return None
    text = Path(path).read_text()
    if path.endswith((".yaml", ".yml")):
        import yaml

        return yaml.safe_load(text)
    return json.loads(text)


def _tokenizer(path: Path, kind: str, given: str | None):
    if kind == "orbax":
        return Tokenizer(given or TOKENIZER_PATH)
    if given is None:
        folder = path if path.is_dir() else path.parent
        found = next((folder / n for n in ("spiece.model", "tokenizer.model") if (folder / n).is_file()), None)
        if found is None:
            raise ValueError(f"{path}: no spiece.model beside the checkpoint; pass --tokenizer (the SentencePiece "
                             f"model it was trained with)")
        given = found
    return Tokenizer.released_siglip(given)


def _image_px(path: Path, kind: str, raw_px: int | None) -> int:
    """The checkpoint's image size: an HF folder's config.json says it; else its position embeddings."""
    if kind == "hf":
        config = (path if path.is_dir() else path.parent) / "config.json"
        if config.is_file():
            return int((json.loads(config.read_text()).get("vision_config") or {}).get("image_size", 224))
    return raw_px or 224


def evaluate(args) -> str:
    from flax import traverse_util
    from tqdm.auto import tqdm

    t_start = time.perf_counter()
    path = Path(args.checkpoint)
    sets = _real_sets(args.set)
    if not sets and not args.analogs:
        raise ValueError("nothing to evaluate: give --set NAME=FOLDER and/or --analogs")
    kind = siglip.checkpoint_kind(path)
    model, params = siglip.load(path, _read_config(args.config))
    raw_px, text_len = siglip.checkpoint_sizes(traverse_util.flatten_dict(params, sep="/"))
    px = args.px or _image_px(path, kind, raw_px)
    tokenizer = _tokenizer(path, kind, args.tokenizer)
    if tokenizer.vocab_size > params["txt"]["Embed_0"]["embedding"].shape[0]:
        raise ValueError(f"tokenizer {tokenizer.path} has {tokenizer.vocab_size} pieces, the checkpoint's text "
                         f"embedding {params['txt']['Embed_0']['embedding'].shape[0]}: not the model's tokenizer")
    bar = tqdm(desc="images", unit="img", disable=None)

    def embed_images(x):
        z = siglip.embed_images(model, params, x)
        bar.update(len(x))
        return z

    embedder = Embedder(embed_images, lambda t: siglip.embed_texts(model, params, t),
                        lambda texts: tokenizer.encode(texts, text_len), args.batch_size)
    pretrained = path.name.removesuffix(".npz")
    model_name = _model_name(params)
    out = Path(args.out or Path("results/eval_cli") / pretrained)
    out.mkdir(parents=True, exist_ok=True)
    record = dict(checkpoint=str(path.resolve()), checkpoint_kind=kind, image_px=px, text_len=text_len,
                  tokenizer=str(tokenizer.path), templates=args.templates,
                  provenance=provenance("cli", {"argv": sys.argv[1:], "args": vars(args)}))
    tidy, images_seen = [], 0
    prompts = Prompts(tuple(names.templates(args.templates)))
    for name, folder in sets.items():
        t0 = time.perf_counter()
        data = real_eval.LOADERS[name](folder, allow_missing=not args.strict)
        rows, read = real_eval.evaluate_real_set(name, data, embedder, prompts, px, args.shots, strict=args.strict)
        seconds = time.perf_counter() - t0
        images_seen += len(read)
        extra = {"images": read.accounting(), "notes": read.notes, "seconds": seconds,
                 "seconds_per_1000_images": 1000 * seconds / max(1, len(read)), "source": "real", **record}
        tidy += _write_clip_benchmark(name, rows, out, pretrained, model_name, extra)
    if args.analogs:
        tidy += _analogs(args, embedder, px, out, pretrained, model_name, record)
    bar.close()
    table = pd.DataFrame(tidy, columns=list(TIDY_COLUMNS))
    table.to_csv(out / "results.csv", index=False)
    table.to_parquet(out / "results.parquet", index=False)
    wall = time.perf_counter() - t_start
    return _summary(table, out, wall, images_seen)


def _model_name(params) -> str:
    width = params["img"]["embedding"]["kernel"].shape[-1]
    patch = params["img"]["embedding"]["kernel"].shape[0]
    depth = sum(1 for k in params["img"]["Transformer"] if k.startswith("encoderblock_"))
    return f"siglip_w{width}_d{depth}_p{patch}"


def _language_of(name: str, task: str) -> str:
    if m := XM3600_RETRIEVAL.match(task):
        return m["lang"]
    if (m := RETRIEVAL.match(task)) and m["lang"]:
        return m["lang"]
    return "en"


def _clip_metrics(task_rows: list[dict]) -> tuple[str, dict]:
    """CLIP_benchmark's task name and metrics from our rows (errors in %) of one dataset and language."""
    metrics, task = {}, "zeroshot_classification"
    for r in task_rows:
        t = r["task"]
        m = XM3600_RETRIEVAL.match(t) or RETRIEVAL.match(t)
        if m and r["metric"] == "error_pct":
            task = "zeroshot_retrieval"
            k = (m.groupdict().get("k") or "1")
            kind = "text_retrieval_recall" if m["dir"] == "i2t" else "image_retrieval_recall"
            metrics[f"{kind}@{k}"] = 1.0 - r["value"] / 100.0
        elif t.endswith("/0shot") and r["metric"] == "error_pct":
            metrics["acc1"] = 1.0 - r["value"] / 100.0
    return task, metrics


def _write_clip_benchmark(name, rows, out: Path, pretrained, model_name, extra) -> list[dict]:
    tidy = [{"dataset": name, "language": _language_of(name, r["task"]),
             **{k: r[k] for k in ("task", "metric", "value", "se", "n")}} for r in rows]
    for language in dict.fromkeys(t["language"] for t in tidy):
        these = [t for t in tidy if t["language"] == language]
        task, metrics = _clip_metrics(these)
        dataset = CLIP_BENCHMARK_NAMES.get(name, name)
        doc = {"dataset": dataset, "model": model_name, "pretrained": pretrained, "task": task,
               "metrics": metrics, "language": language,
               "vlscale": {"tasks": {t["task"]: {k: t[k] for k in ("metric", "value", "se", "n")} for t in these},
                           **extra}}
        write_json(out / f"{dataset}_{pretrained}_{model_name}_{language}_{task}.json", doc)
    return tidy


def _analogs(args, embedder, px, out, pretrained, model_name, record) -> list[dict]:
    """The synthetic analogs of the params file's profile (report key), as the evaluate stage runs them."""
    p = load_params(args.params)
    evaluate_params = p.evaluate
    sizes = {k: v for k, v in evaluate_params.analogs.items() if v > 0}
    key = evaluate_params.key
    train_sizes = {k: v for k, v in evaluate_params.train_sizes.items() if k in sizes and v > 0}
    suite = analog_suite(build_world(p.world), px, sizes, train_sizes, key, print)
    prompts = Prompts(tuple(evaluate_params.templates.analog))
    tidy = []
    for bench in sizes:
        t0 = time.perf_counter()
        rows = evaluate_analog(suite, bench, embedder, prompts, args.shots)
        extra = {"source": "analog", "key": key, "profile": p.profile, "seconds": time.perf_counter() - t0,
                 **record}
        tidy += _write_clip_benchmark(f"analog_{bench}", rows, out, pretrained, model_name, extra)
    return tidy


def _summary(table: pd.DataFrame, out: Path, wall: float, images: int) -> str:
    main = table[table["task"].str.contains(r"/0shot$|/i2t$|/t2i$|/i2t/|/t2i/") & (table["metric"] == "error_pct")]
    lines = [f"{'dataset':<22} {'language':<8} {'task':<34} {'error %':>8} {'± se':>6} {'n':>7}"]
    for r in main.itertuples():
        lines.append(f"{r.dataset:<22} {r.language:<8} {r.task:<34} {r.value:8.2f} {r.se:6.2f} {int(r.n):7d}")
    lines.append(f"{len(table)} results in {out} ({wall:.1f} s; {images} real images, "
                 f"{1000 * wall / max(1, images):.1f} s per 1,000)" if images else
                 f"{len(table)} results in {out} ({wall:.1f} s)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
