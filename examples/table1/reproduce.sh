#!/usr/bin/env bash
# Reproduces Table 1 on one dataset: the sweep of examples/table1/DATASET.flags,
# one run at a time, resumable (a killed sweep continues with its unfinished
# run from its last whole epoch; finished runs are never redone).
#
#   examples/table1/reproduce.sh fashion_mnist            # or cifar10
#   examples/table1/reproduce.sh fashion_mnist --commit   # git-commit each finished run's results
set -euo pipefail
cd "$(dirname "$0")/../.."
dataset=${1:?usage: examples/table1/reproduce.sh DATASET [--commit]}
flags="examples/table1/${dataset}.flags"
results=$(sed -n 's/^--output_dir=//p' "$flags")
while true; do
  status=$(keras-contrastive sweep --flagfile="$flags" --max_runs=1 | tee /dev/stderr | tail -n 1)
  if [ "${2:-}" = "--commit" ]; then
    git add -- "$results" && git commit -q -m "Table 1 (${dataset}): ${status}" -- "$results" \
      || echo "nothing committed this time" >&2
  fi
  case "$status" in *"pending: 0"*) break ;; esac
done
