"""What training at the paper's scale costs: chip-hours of one 10^11-example SigLIP run per model and device.

    python tools/scale_estimate.py [--mfu 0.4] [--examples 1e11] [--chips 256]

Model FLOPs per example come from vlscale.training.flops (the trainer's own MFU accounting: 224 px, 64 text
tokens, batch 32,768, 50% image-token dropping, as the paper trains); a device's examples/s is its dense bf16
peak × MFU / FLOPs per example. The MFU is an input, not a measurement: no accelerator was lent to measure
one (bench/train_throughput.py --profile gpu does it on a GPU; its target there is 40%). The paper's own
check: Fig. 6 puts its largest runs at about 4 × 10^8 TPU-seconds.
"""
import argparse

from vlscale.models.vit import decode_variant
from vlscale.training.flops import PEAK_BF16, train_flops_per_example

MODELS = {"B/16": ("B/16", 224), "L/16": ("L/16", 224), "H/14": ("H/14", 224)}
DEVICES = ("TPU v5p", "TPU v5", "TPU v4", "H100", "A100")


def flops_per_example(variant: str, px: int, seq_len: int = 64, batch: int = 32768, drop: float = 0.5) -> float:
    image = {**decode_variant(variant), "pool_type": "map"}
    text = decode_variant(variant.split("/")[0])
    return train_flops_per_example(image, text, px, seq_len, (None, image["width"]), batch, drop)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mfu", type=float, default=0.4, help="model FLOPs utilisation assumed (default 0.4)")
    ap.add_argument("--examples", type=float, default=1e11, help="examples seen by one run (the paper: 1e11)")
    ap.add_argument("--chips", type=int, default=256, help="chips of the slice or cluster (the paper: 256)")
    args = ap.parse_args()
    peaks = dict(PEAK_BF16)
    print(f"One run of {args.examples:.0e} examples at MFU {args.mfu:.0%} on {args.chips} chips")
    print("| model | GFLOPs / example | device | examples/s per chip | chip-hours | wall-clock days |")
    print("|---|---:|---|---:|---:|---:|")
    for name, (variant, px) in MODELS.items():
        f = flops_per_example(variant, px)
        for device in DEVICES:
            rate = peaks[device] * args.mfu / f
            chip_hours = args.examples / rate / 3600
            print(f"| {name} | {f / 1e9:,.0f} | {device} | {rate:,.0f} | {chip_hours:,.0f} | "
                  f"{chip_hours / args.chips / 24:,.1f} |")


if __name__ == "__main__":
    main()
