#!/usr/bin/env bash
# The GPU check: model conformance (TF32 off, and under XLA), attack speed at batch 10 for ens,
# svre/cache and svre/recompute plus XLA, peak GPU memory, and a 10-image Table-2 MI-FGSM
# run_attacks.sh smoke run, on synthetic checkpoints; sized for at most 8 minutes on one GPU.
# Without a GPU it runs the same steps at smoke sizes. Record: benchmarks/results/gpu_check_*.{json,md}.
#
#   benchmarks/gpu_check.sh [--results_dir DIR] [--sections conformance,attack,memory,run_attacks]
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python3}" -m benchmarks.gpu_check "$@"
