#!/usr/bin/env bash
# Is the default profile short of examples? The 100% run trained on N times the examples, on an N-times
# larger pool (every example new), with the default model, schedule shape, cool-down fractions and
# tokenizer; then its last cool-down evaluated on the report key.
#
#   bash tools/more_examples.sh 4      # in a scratch clone, after `make repro`: it rewrites params.yaml,
#                                      # data/sample and runs/s100
#
# Writes runs/s100/ (log.jsonl holds the dev-key probe), metrics/train/s100.json and
# results/more_examples/ (the evaluation JSONs).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:?usage: tools/more_examples.sh FACTOR}
export PATH="$PWD/.venv/bin:$PATH"
[ -f data/tokenizer/spm.model ] || { echo "run make repro first: data/tokenizer/spm.model is missing" >&2; exit 1; }
POOL=$(python -c "import yaml; p = yaml.safe_load(open('params.yaml')); print(int(p['sample']['pool_size'] * $N))")
EXAMPLES=$(python -c "import yaml; p = yaml.safe_load(open('params.yaml')); print(int(p['train']['examples_seen'] * $N))")
python - "$POOL" <<'PY'
import sys, yaml
p = yaml.safe_load(open("params.yaml"))
p["sample"]["pool_size"] = int(sys.argv[1])
open("params.yaml", "w").write(yaml.safe_dump(p, sort_keys=False))
PY
dvc repro -s sample        # the larger pool; the tokenizer stays the default one
time python -m vlscale.training.run s100 --no-progress --set "train.examples_seen=$EXAMPLES" \
    --set train.probe_every_examples=40000
LAST=$(ls -d runs/s100/cooldown/seen_* | sort | tail -1)
python -m vlscale.evaluate "$LAST" --analogs --out results/more_examples
