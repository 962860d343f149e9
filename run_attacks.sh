#!/usr/bin/env bash
# The paper's experiments end to end: attacks, evaluation, and a report beside the paper's numbers.
# The plan lives in svrens_tf/experiments.py (options: ./run_attacks.sh --help; the commands
# and their cost without running anything: ./run_attacks.sh --dry_run).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
exec "${PYTHON:-python3}" -m svrens_tf.cli.run_attacks "$@"
