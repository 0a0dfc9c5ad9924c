"""Host input throughput of the training stream: examples/s of ids + captions + tokens, synthetic pool.

    python bench/input_throughput.py                       # batches of 256 and 1024, 0 and 2 workers
    python bench/input_throughput.py --tokenizer spiece.model --workers 0 2 4

What is timed is what the trainer's host side does per batch (vlscale.data.input.train_stream):
mixture positions -> global ids (Feistel inverse) -> ground truth -> captions -> SentencePiece ids,
padded to --max-len. Images are rendered on the accelerator, just before each update, so they are not part of
it. The first batch (worker start-up) is timed apart. Target: input >= 1.5x the trainer's step
throughput. Prints a markdown table.
"""
import argparse
import os
import platform
import tempfile
import time
from importlib.metadata import version

from vlscale.config import load_params
from vlscale.data.input import SyntheticSource, train_stream
from vlscale.data.mixture import low_resource_targets
from vlscale.data.sampling import synthetic_subsets
from vlscale.data.tokenizer import Tokenizer, balanced_caption_sample, train_tokenizer
from vlscale.world.spec import build_world


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def rate(source, tok, batch_size, workers, batches, max_len):
    """(seconds to the first batch, examples/s over the next `batches` batches)."""
    stream = train_stream(source, tok, batch_size, (batches + 1) * batch_size, seed=0, max_len=max_len,
                          process_index=0, process_count=1, num_workers=workers)
    t = time.perf_counter()
    it = iter(stream)
    next(it)
    first = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(batches):
        next(it)
    elapsed = time.perf_counter() - t
    it.close()
    return first, batches * batch_size / elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--fraction", type=float, default=0.01)
    ap.add_argument("--rebalanced", action="store_true", help="the low-resource targets' mixture")
    ap.add_argument("--tokenizer", help="a SentencePiece .model (default: train one with --vocab pieces)")
    ap.add_argument("--vocab", type=int, default=16000)
    ap.add_argument("--max-len", type=int, default=64)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--examples", type=int, default=200_000, help="examples timed per configuration")
    args = ap.parse_args()

    p = load_params(args.params)
    world = build_world(p.world)
    subsets = synthetic_subsets(world, p.sample.pool_size, p.sample.key)
    if args.tokenizer:
        tok = Tokenizer(args.tokenizer)
    else:
        sample = balanced_caption_sample(world, subsets, 1.0, per_language=1000, key=0)
        tok = Tokenizer(train_tokenizer(sample, args.vocab, os.path.join(tempfile.mkdtemp(), "bench.model")))
    source = SyntheticSource(world, subsets, args.fraction, low_resource_targets() if args.rebalanced else None)

    rows = []
    for batch_size in args.batch_sizes:
        for workers in args.workers:
            first, examples_per_s = rate(source, tok, batch_size, workers, max(4, args.examples // batch_size),
                                         args.max_len)
            rows.append((batch_size, workers, first, examples_per_s))

    import jax

    device = jax.devices()[0]
    print(f"\nHost input throughput — {cpu_name()}, {os.cpu_count()} cores; accelerator: {device.platform} "
          f"({device.device_kind})")
    print(f"python {platform.python_version()}, grain {version('grain')}, sentencepiece {version('sentencepiece')}, "
          f"numpy {version('numpy')}, jax {jax.__version__}; profile {p.profile}, pool "
          f"{p.sample.pool_size:,}, subset {args.fraction:g} ({len(source):,} mixture examples), "
          f"{tok}, max_len {args.max_len}\n")
    print("| batch | workers | first batch (s) | examples/s |")
    print("|---:|---:|---:|---:|")
    for batch_size, workers, first, examples_per_s in rows:
        print(f"| {batch_size} | {workers} | {first:.2f} | {examples_per_s:,.0f} |")


if __name__ == "__main__":  # Grain's worker processes are spawned: they import this file
    main()
