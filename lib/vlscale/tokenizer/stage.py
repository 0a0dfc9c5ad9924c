"""The tokenizer stage: a multilingual SentencePiece model with mT5's conventions, trained on a language-balanced
caption sample (vlscale.data.tokenizer), or the model `tokenizer.model_path` names, used unchanged.

The paper tokenizes captions with mT5's SentencePiece model (arXiv 2502.07617 §3); trained on the natural mix,
English and Japanese would take most of the vocabulary and the low-resource languages would fall apart into bytes,
so the sample has up to `tokenizer.per_language` captions of every caption language.

`run(params)` writes data/tokenizer/spm.model and metrics/tokenizer.json (vocabulary size, languages, tokens per
character of the low-resource and the other languages, byte-fallback and truncated shares, per-language statistics,
provenance) and returns the metrics.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from vlscale.config import validate
from vlscale.data import tokenizer as tk
from vlscale.files import write_json
from vlscale.provenance import provenance
from vlscale.world.spec import build_world

MODEL_PATH = tk.TOKENIZER_PATH
METRICS_PATH = Path("metrics/tokenizer.json")
SAMPLE_DIR = Path("data/sample")  # the sample stage's pool: how many pages per language it has


def run(params: dict) -> dict:
    """The tokenizer stage (module docstring). params: profile, world, tokenizer."""
    p = validate({k: params[k] for k in ("profile", "world", "tokenizer")})
    MODEL_PATH.parent.mkdir(parents=True, exist_ok=True)
    captions = tk.pool_caption_sample(build_world(p.world), SAMPLE_DIR, p.tokenizer.per_language, p.tokenizer.key)
    if p.tokenizer.model_path:
        shutil.copyfile(p.tokenizer.model_path, MODEL_PATH)  # the user's model, e.g. mT5's spiece.model
    else:
        tk.train_tokenizer(captions, p.tokenizer.vocab_size, MODEL_PATH, per_language=p.tokenizer.per_language,
                           seed=p.tokenizer.key)
    tok = tk.Tokenizer(MODEL_PATH)
    stats = tk.language_stats(tok, captions, p.tokenizer.max_len)
    low = stats["low_resource"]
    metrics = {
        "vocab_size": tok.vocab_size,
        "languages": len(captions),
        "captions": int(stats["captions"].sum()),
        "tokens_per_char": {"low_resource": float(stats[low]["tokens_per_char"].mean()),
                            "other": float(stats[~low]["tokens_per_char"].mean())},
        "byte_fallback_share": float((stats["byte_fallback_share"] * stats["tokens"]).sum() / stats["tokens"].sum()),
        "truncated_share": float((stats["truncated"] * stats["captions"]).sum() / stats["captions"].sum()),
        "per_language": stats.set_index("language").to_dict(orient="index"),
        "provenance": provenance(p.profile, p.dump(), model_file=str(MODEL_PATH)),
    }
    write_json(METRICS_PATH, metrics)
    return metrics
