"""Transfer any SigLIP checkpoint's image tower to COCO captions (a PaliGemma-style decoder, vlscale.transfer).

    python -m vlscale.transfer runs/s100/cooldown/seen_000000199936 --coco /data/coco
    python -m vlscale.transfer google-siglip-base-patch16-224/ --coco /data/coco --setting unfrozen --steps 2000
    python -m vlscale.transfer webli_en_b16_224_63724782.npz --config b16.json --coco /data/coco

The checkpoint is anything vlscale.siglip.load reads: one of our trainer's checkpoints (its saved model config), a
Hugging Face SigLIP folder (its config.json) or a big_vision .npz (with --config, a JSON or YAML file of its
big_vision model config). Only its image tower is used (without its pooling head), at the image size its position
embeddings were made for; the decoder and the projection start fresh, their vocabulary the --tokenizer's (default
the tokenizer stage's data/tokenizer/spm.model), independent of the checkpoint's text tower.

COCO (--coco ROOT, read as the evaluate CLI reads it: vlscale.evals.real_sets): with the Karpathy split file, the
transfer trains on images of its train and restval parts (every reference caption an example) and is graded on
images of its test part; with COCO 2017 val alone, the images are split by a hash of their key
(vlscale.transfer.coco). The decoder's sizes and the recipe are params.yaml's `transfer` block (--params), each
overridable; --answer-len defaults to the length (in the tokenizer's pieces) that holds 99% of the training captions.

Writes under --out (default results/transfer_cli/<checkpoint name>/<setting>):
    summary.json   CIDEr (x 100) of the transfer, the oracle (each test image's first reference against its others)
                   and chance (the best constant training caption), sizes, the recipe, timings, provenance
    rows.parquet   every graded test example of the three (check, task, image, key, language, exact_match, cider,
                   prediction, references)
and prints a short table. Bad input (a missing root or checkpoint, too few images) fails with exit code 2 before any
training.
"""
from __future__ import annotations

import argparse
import functools
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import yaml
from flax import traverse_util
from flax.core import unfreeze

from vlscale import siglip
from vlscale.allocator import keep_freed_memory
from vlscale.config import DecoderParams, load_params
from vlscale.data.tokenizer import TOKENIZER_PATH, Tokenizer
from vlscale.files import write_json
from vlscale.provenance import provenance
from vlscale.transfer import coco, fit
from vlscale.transfer.run import lay_out_tasks, transfer

CHECKS = ("transfer", "oracle", "chance")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vlscale.transfer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="our trainer's checkpoint, an HF SigLIP folder or a big_vision .npz")
    parser.add_argument("--coco", required=True, metavar="ROOT", help="COCO root (Karpathy split + 2014, or 2017 val)")
    parser.add_argument("--config", help="JSON or YAML big_vision model config (needed for a .npz)")
    parser.add_argument("--tokenizer", help=f"SentencePiece model of the decoder (default {TOKENIZER_PATH})")
    parser.add_argument("--params", default="params.yaml", help="params file whose transfer block gives the defaults")
    parser.add_argument("--setting", choices=("frozen", "unfrozen"),
                        help="frozen: the tower stays as pretrained (default: the params' first setting)")
    parser.add_argument("--train-images", type=int, help="training images (each with all its references)")
    parser.add_argument("--test-images", type=int, help="test images")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--peak-lr", type=float)
    parser.add_argument("--tower-lr-scale", type=float, help="unfrozen: the tower's rate as a share of --peak-lr")
    parser.add_argument("--warmup-steps", type=int)
    parser.add_argument("--prompt-len", type=int)
    parser.add_argument("--answer-len", type=int, help="pieces a caption may have (default: 99%% of the training "
                                                       "captions fit)")
    parser.add_argument("--decoder", metavar="KEY=VALUE,...", default="",
                        help="decoder sizes over the params' (width, depth, mlp_dim, num_heads), e.g. width=128,depth=4")
    parser.add_argument("--seed", type=int, help="the draw, the decoder's initialisation and its batches")
    parser.add_argument("--px", type=int, help="image size, only for a tower without position embeddings")
    parser.add_argument("--decode-batch-size", type=int, default=256)
    parser.add_argument("--allow-missing", action="store_true", help="leave out images missing on disk")
    parser.add_argument("--out", help="output folder (default results/transfer_cli/<checkpoint name>/<setting>)")
    args = parser.parse_args(argv)
    keep_freed_memory()  # as the transfer stage does (vlscale.allocator)
    try:
        table = run(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(table)
    return 0


def _decoder(base: DecoderParams, text: str) -> DecoderParams:
    """The params' decoder with the KEY=VALUE overrides of `text`."""
    update = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or key not in DecoderParams.model_fields or not value.strip().isdigit():
            raise ValueError(f"--decoder {text!r}: {item!r} is not KEY=INTEGER with KEY one of "
                             f"{list(DecoderParams.model_fields)}")
        update[key] = int(value)
    return DecoderParams(**{**base.model_dump(), **update})


def _check_inputs(args) -> None:
    """Every path the command names exists (before any work)."""
    if not Path(args.checkpoint).exists():
        raise ValueError(f"checkpoint {args.checkpoint}: does not exist")
    if not Path(args.coco).is_dir():
        raise ValueError(f"--coco {args.coco}: not a directory (expected the COCO root)")
    for flag, value in (("--config", args.config), ("--params", args.params),
                        ("--tokenizer", args.tokenizer or TOKENIZER_PATH)):
        if value is not None and not Path(value).is_file():
            raise ValueError(f"{flag} {value}: no such file")
    for flag in ("train_images", "test_images", "steps", "batch_size", "prompt_len", "answer_len",
                 "decode_batch_size", "px"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag.replace('_', '-')} {value}: must be at least 1")


def _tower(model, params, args, fallback_px: int) -> tuple[dict, int, int]:
    """(the image tower's big_vision config, the image size, the image tokens) of a loaded two-tower model."""
    if model.image_model != "vit":
        raise ValueError(f"checkpoint {args.checkpoint}: image tower {model.image_model!r}; the transfer model "
                         f"takes a ViT ('vit')")
    raw_px, _ = siglip.checkpoint_sizes(traverse_util.flatten_dict(params, sep="/"))
    if args.px and raw_px and args.px != raw_px:
        raise ValueError(f"--px {args.px}: the checkpoint's position embeddings are for {raw_px} px images")
    px = raw_px or args.px or fallback_px
    patch = params["img"]["embedding"]["kernel"].shape[:2]
    return dict(unfreeze(model.image or {})), px, (px // patch[0]) * (px // patch[1])


def run(args) -> str:
    """The transfer the arguments ask for (module docstring); returns the printed table."""
    t0 = time.perf_counter()
    _check_inputs(args)
    p = load_params(args.params)
    block = p.transfer
    setting = args.setting or block.settings[0]
    seed = block.seed if args.seed is None else args.seed
    decoder = _decoder(block.decoder, args.decoder)
    recipe = fit.Recipe(steps=args.steps or block.steps, batch_size=args.batch_size or block.batch_size,
                        peak_lr=args.peak_lr or block.peak_lr,
                        warmup_steps=block.warmup_steps if args.warmup_steps is None else args.warmup_steps,
                        weight_decay=block.weight_decay, grad_clip_norm=block.grad_clip_norm,
                        tower_lr_scale=block.tower_lr_scale if args.tower_lr_scale is None else args.tower_lr_scale,
                        frozen=setting == "frozen")
    tokenizer = Tokenizer(args.tokenizer or TOKENIZER_PATH)
    data = coco.load_coco(args.coco, allow_missing=args.allow_missing)
    train, test, references = coco.draw(data, args.train_images or block.train_images,
                                        args.test_images or block.test_images, seed)
    split_rule = coco.pools(data, seed)[2]
    model, pretrained = siglip.load(args.checkpoint, _read_config(args.config))
    image_config, px, image_tokens = _tower(model, pretrained, args, p.train.image_px)
    prompt_len = args.prompt_len or block.prompt_len
    answer_len, covered = coco.answer_length(tokenizer, train.answers, args.answer_len)
    loaded = time.perf_counter()
    print(f"COCO {coco.root_of(data)}: {len(train.ids)} training images ({len(train.answers)} captions) and "
          f"{len(test.ids)} test images from {split_rule}; {px} px, {image_tokens} image tokens, answers of "
          f"{answer_len} pieces ({100 * covered:.1f}% of training captions fit)", flush=True)
    train_examples = lay_out_tasks(train, coco.load_images(data, train.ids, px), tokenizer, prompt_len, answer_len)
    test_examples = lay_out_tasks(test, coco.load_images(data, test.ids, px), tokenizer, prompt_len, answer_len)
    read = time.perf_counter()
    llm = {"vocab_size": tokenizer.vocab_size, **decoder.model_dump(),
           "max_len": image_tokens + prompt_len + answer_len}
    got = transfer(pretrained, image_config, train_examples, test_examples, tokenizer, llm, recipe, seed, answer_len,
                   min(args.decode_batch_size, len(test.answers)),
                   progress=lambda step, loss: print(f"step {step}: loss {loss:.4f}", flush=True),
                   grader=functools.partial(coco.grade, references=references))
    t_checks = time.perf_counter()
    caption, chance = coco.chance_answers(train, test, references, seed)
    graded = {"transfer": (got["rows"], got["predictions"]),
              "oracle": (coco.oracle_answers(test, references), [r[0] for r in references]),
              "chance": (chance, [caption] * len(test.answers))}
    checks_s = time.perf_counter() - t_checks
    keys = data.examples["key"].to_numpy()[test.ids]
    rows = pd.concat([pd.DataFrame(graded_rows).assign(check=check, key=keys[[r["image"] for r in graded_rows]],
                                                       prediction=predictions,
                                                       references=[references[r["image"]] for r in graded_rows])
                      for check, (graded_rows, predictions) in graded.items()], ignore_index=True)
    rows = rows[["check", "task", "image", "key", "language", "exact_match", "cider", "prediction", "references"]]
    means = rows.groupby("check", sort=False)[["cider", "exact_match"]].mean()
    out = Path(args.out or Path("results/transfer_cli") / Path(args.checkpoint).name.removesuffix(".npz") / setting)
    out.mkdir(parents=True, exist_ok=True)
    rows.to_parquet(out / "rows.parquet", index=False)
    summary = {
        "cider": {check: float(means.loc[check, "cider"]) for check in CHECKS},
        "exact_match": {check: float(means.loc[check, "exact_match"]) for check in CHECKS},
        "chance_caption": caption,
        "checkpoint": str(Path(args.checkpoint).resolve()), "checkpoint_kind": siglip.checkpoint_kind(
            Path(args.checkpoint)),
        "coco": str(Path(args.coco).resolve()), "split": split_rule, "notes": data.notes, "images": data.accounting(),
        "setting": setting, "train_images": len(train.ids), "train_examples": len(train.answers),
        "test_images": len(test.ids), "test_ids": [int(i) for i in test.ids],
        "image_px": px, "image_tokens": image_tokens, "image_config": image_config,
        "prompt_len": prompt_len, "answer_len": answer_len, "answer_len_covers": covered,
        "decoder": llm, "recipe": asdict(recipe), "seed": seed, "tokenizer": tokenizer.path,
        "first_loss": got["losses"][0], "final_loss": got["losses"][-1],
        "timings": {"load_s": loaded - t0, "images_s": read - loaded, "train_s": got["train_s"],
                    "decode_s": got["decode_s"], "checks_s": checks_s, "wall_s": time.perf_counter() - t0},
        "provenance": provenance("cli", {"argv": sys.argv[1:], "args": vars(args), "transfer": block.model_dump()}),
    }
    write_json(out / "summary.json", summary)
    return _table(summary, out)


def _read_config(path: str | None):
    """A big_vision model config from a JSON or YAML file (YAML reads JSON too); None without one."""
    return None if path is None else yaml.safe_load(Path(path).read_text())


def _table(summary: dict, out: Path) -> str:
    lines = [f"{'check':<10} {'CIDEr':>8} {'exact %':>8}"]
    for check in CHECKS:
        lines.append(f"{check:<10} {summary['cider'][check]:8.2f} {100 * summary['exact_match'][check]:8.2f}")
    t = summary["timings"]
    lines.append(f"{summary['test_images']} test images, {summary['train_examples']} training captions, "
                 f"{summary['recipe']['steps']} steps ({summary['setting']}); chance caption "
                 f"{summary['chance_caption']!r}; {t['wall_s']:.0f} s; {out}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
