#!/usr/bin/env bash
# Spread run_attacks.sh's attacks over a SLURM job array, then merge and report (docs/slurm.md).
#
#   slurm/submit.sh N [run_attacks.sh options] [-- svrens-attack flags]
#
# Fetches what the plan needs here (the download steps of `run_attacks.sh --dry_run`), then
# submits N array tasks, task i running `run_attacks.sh --shard i/N ...` (shard i of every
# attack run, one GPU each), and one last job, started when every task has succeeded, running
# `run_attacks.sh ...` unsharded: its attack steps find every image done, then evaluation and
# the report run. SBATCH_* environment variables (SBATCH_PARTITION, SBATCH_ACCOUNT, ...) and
# SVRENS_SLURM_TIME (default 12:00:00) set the jobs' resources.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ $# -lt 1 || ! "$1" =~ ^[1-9][0-9]*$ ]]; then
    sed -n '2,/^set/s/^# \{0,1\}//p' "$0" | sed '$d' >&2; exit 2
fi
SHARDS="$1"; shift
TIME="${SVRENS_SLURM_TIME:-12:00:00}"
"$REPO/run_attacks.sh" --dry_run "$@" | grep '^svrens-download ' | while read -r line; do
    eval "set -- ${line#svrens-download }"
    PYTHONPATH="$REPO" "${PYTHON:-python3}" -m svrens_tf.cli.download "$@"
done
ARGS=$(printf ' %q' "$@")
array=$(sbatch --parsable --job-name=svrens-shard --array="0-$((SHARDS - 1))" --gres=gpu:1 \
    --time="$TIME" --output=slurm-svrens-shard-%A_%a.out \
    --wrap="\"$REPO/run_attacks.sh\" --shard \$SLURM_ARRAY_TASK_ID/$SHARDS$ARGS")
final=$(sbatch --parsable --job-name=svrens-report --dependency="afterok:$array" --gres=gpu:1 \
    --time="$TIME" --output=slurm-svrens-report-%j.out --wrap="\"$REPO/run_attacks.sh\"$ARGS")
echo "submitted shards $array (array 0-$((SHARDS - 1))) and merge + report $final"
