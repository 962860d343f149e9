#!/usr/bin/env bash
# The paper's experiments end to end: attacks, evaluation, and a report beside the paper's numbers.
#
#   ./run_attacks.sh [--tables 1,2,3] [--figures 1,2,3,4] [--attacks i_fgsm,mi_fgsm,...]
#                    [--ensembles ens,svre] [--seeds N] [--dataset_dir DIR]
#                    [--checkpoint_dir DIR] [--results_dir DIR]
#                    [--defenses bit_red,jpeg,...] [--defense_option jpeg.quality=75]...
#                    [--external_defense NAME=COMMAND]...
#                    [--ablation_attack mi_fgsm] [--eval_batch_size 10] [-- svrens-attack flags]
#
# With neither --tables nor --figures, everything runs. Seeds are 1000 (the authors'), 1001, ...;
# the report gives mean +- std over them. Flags after `--` go to every svrens-attack call (e.g.
# `-- --num_iter 1 --m_svrg 1 --batch_size 2` for a smoke run); the experiment's own flags come
# after them. Checkpoints and the NIPS17 set are fetched with svrens-download on first use.
# Every attack folder keeps attack_run.json, every evaluation folder eval_run.json (flags,
# versions, seed, timings); this script's own log is RESULTS/run_attacks.log. Reruns resume.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
PYTHON="${PYTHON:-python3}"

NORMAL=(inc_v3 inc_v4 incres_v2 res_v2_101)
ADV_TRAINED=(ens3_adv_inc_v3 ens4_adv_inc_v3 ens_adv_incres_v2)
TABLES="" FIGURES="" SEEDS=1 ATTACKS="i_fgsm,mi_fgsm,tim,ti_dim,si_ti_dim" ENSEMBLES="ens,svre"
DATASET_DIR="$REPO/data/nips17" CHECKPOINT_DIR="${SVRENS_CHECKPOINT_DIR:-$REPO/checkpoints}"
RESULTS_DIR="$REPO/results" DEFENSES="" ABLATION_ATTACK="mi_fgsm" EVAL_BATCH_SIZE=10
DEFENSE_FLAGS=() ATTACK_FLAGS=()

usage() { sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; exit "${1:-0}"; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --tables) TABLES="$2"; shift 2 ;;
        --figures) FIGURES="$2"; shift 2 ;;
        --attacks) ATTACKS="$2"; shift 2 ;;
        --ensembles) ENSEMBLES="$2"; shift 2 ;;
        --seeds) SEEDS="$2"; shift 2 ;;
        --dataset_dir) DATASET_DIR="$2"; shift 2 ;;
        --checkpoint_dir) CHECKPOINT_DIR="$2"; shift 2 ;;
        --results_dir) RESULTS_DIR="$2"; shift 2 ;;
        --defenses) DEFENSES="$2"; shift 2 ;;
        --defense_option) DEFENSE_FLAGS+=("--defense_option=$2"); shift 2 ;;
        --external_defense) DEFENSE_FLAGS+=("--external_defense=$2"); shift 2 ;;
        --ablation_attack) ABLATION_ATTACK="$2"; shift 2 ;;
        --eval_batch_size) EVAL_BATCH_SIZE="$2"; shift 2 ;;
        --) shift; ATTACK_FLAGS=("$@"); break ;;
        -h|--help) usage ;;
        *) echo "run_attacks.sh: unknown option $1" >&2; usage 2 >&2 ;;
    esac
done
if [[ -z "$TABLES$FIGURES" ]]; then TABLES=1,2,3 FIGURES=1,2,3,4; fi
if ! [[ "$SEEDS" =~ ^[1-9][0-9]*$ ]]; then echo "run_attacks.sh: --seeds takes a count >= 1" >&2; exit 2; fi
mkdir -p "$RESULTS_DIR"
LOG="$RESULTS_DIR/run_attacks.log"

log() { echo "[$(date -u +%FT%TZ)] $*" | tee -a "$LOG"; }
wants() { [[ ",$1," == *",$2,"* ]]; }
run() { log "+ $*"; "$@"; }
join() { local IFS=,; echo "$*"; }

fetch() {
    # $1: comma-separated zoo names (or "all")
    if ! run "$PYTHON" -m svrens_tf.cli.download --models "$1" --checkpoint_dir "$CHECKPOINT_DIR"; then
        log "could not install checkpoints $1 into $CHECKPOINT_DIR: fix the error above (e.g. copy"
        log "the release tarballs from http://download.tensorflow.org/models/ into that folder) and rerun"
        exit 1
    fi
}

if [[ ! -f "$DATASET_DIR/dev_dataset.csv" && ! -f "$DATASET_DIR/val_rs.csv" ]]; then
    if ! run "$PYTHON" -m svrens_tf.cli.download --dataset "$DATASET_DIR"; then
        log "no NIPS17 set in $DATASET_DIR and the download failed: fetch it with"
        log "  svrens-download --dataset $DATASET_DIR   (or pass --dataset_dir of a copy)"
        exit 1
    fi
fi

attack() {
    # $1: output folder, $2: surrogates, rest: attack flags
    local out="$1" surrogates="$2"; shift 2
    run "$PYTHON" -m svrens_tf.cli.attack --input_dir "$DATASET_DIR" --output_dir "$out" \
        --checkpoint_dir "$CHECKPOINT_DIR" --models "$surrogates" "${ATTACK_FLAGS[@]}" "$@"
}

evaluate() {
    # $1: output folder, $2: comma-separated folders, rest: classifier flags
    local out="$1" folders="$2"; shift 2
    run "$PYTHON" -m svrens_tf.cli.evaluate --clean_dir "$DATASET_DIR" --input_dir "$folders" \
        --checkpoint_dir "$CHECKPOINT_DIR" --batch_size "$EVAL_BATCH_SIZE" --output_dir "$out" "$@"
}

ablation() {
    # $1: folder name (shared by the figures: Figures 2 and 4 reuse the same SVRE runs), rest:
    # attack flags; uses $seed and appends to $folders
    local out="$RESULTS_DIR/attacks/ablation_$ABLATION_ATTACK/$1/seed$seed"; shift
    attack "$out" "$(join "${NORMAL[@]}")" --base "$ABLATION_ATTACK" --seed "$seed" "$@"
    folders+=("$out")
}

IFS=, read -r -a ATTACK_LIST <<< "$ATTACKS"
IFS=, read -r -a ENSEMBLE_LIST <<< "$ENSEMBLES"
log "run_attacks.sh tables=$TABLES figures=$FIGURES attacks=$ATTACKS ensembles=$ENSEMBLES" \
    "seeds=$SEEDS attack flags: ${ATTACK_FLAGS[*]:-}"
if wants "$TABLES" 3; then
    fetch all
elif [[ "$TABLES" == 1 && -z "$FIGURES" ]]; then
    fetch "$(join "${NORMAL[@]}")"
else
    fetch "$(join "${NORMAL[@]}" "${ADV_TRAINED[@]}")"
fi
for ((k = 0; k < SEEDS; k++)); do
    seed=$((1000 + k))
    if wants "$TABLES" 1; then
        folders=()
        for held_out in "${NORMAL[@]}"; do
            surrogates=$(join $(printf '%s\n' "${NORMAL[@]}" | grep -vx "$held_out"))
            for base in "${ATTACK_LIST[@]}"; do
                for ensemble in "${ENSEMBLE_LIST[@]}"; do
                    out="$RESULTS_DIR/attacks/holdout_$held_out/${ensemble}_$base/seed$seed"
                    attack "$out" "$surrogates" --base "$base" --ensemble "$ensemble" --seed "$seed"
                    folders+=("$out")
                done
            done
        done
        evaluate "$RESULTS_DIR/table1/seed$seed" "$(join "${folders[@]}")" --models "$(join "${NORMAL[@]}")"
    fi
    if wants "$TABLES" 2 || wants "$TABLES" 3 || wants "$FIGURES" 1; then
        folders=()
        for base in "${ATTACK_LIST[@]}"; do
            for ensemble in "${ENSEMBLE_LIST[@]}"; do
                out="$RESULTS_DIR/attacks/all4/${ensemble}_$base/seed$seed"
                attack "$out" "$(join "${NORMAL[@]}")" --base "$base" --ensemble "$ensemble" --seed "$seed"
                folders+=("$out")
            done
        done
        if wants "$TABLES" 2 || wants "$FIGURES" 1; then
            evaluate "$RESULTS_DIR/table2/seed$seed" "$(join "${folders[@]}")" \
                --models "$(join "${NORMAL[@]}" "${ADV_TRAINED[@]}")"
        fi
        if wants "$TABLES" 3; then
            defenses="${DEFENSES:-$("$PYTHON" -c 'from svrens_tf import defenses; print(",".join(defenses.NAMES))')}"
            evaluate "$RESULTS_DIR/table3/seed$seed" "$(join "${folders[@]}")" --models "" \
                --defenses "$defenses" --seed "$seed" "${DEFENSE_FLAGS[@]}"
        fi
    fi
    for figure in 2 3 4; do
        wants "$FIGURES" "$figure" || continue
        folders=()
        case "$figure" in
            2) for m in 0 4 8 12 16 20 24 28 32; do ablation "svre_m$m" --ensemble svre --m_svrg "$m"; done ;;
            3) for beta in 0.1 0.2 0.4 0.8 1.6 3.2 6.4 12.8 25.6; do
                   ablation "svre_beta$beta" --ensemble svre --beta "$beta"; done ;;
            4) for m in 0 4 8 16 32; do ablation "svre_m$m" --ensemble svre --m_svrg "$m"; done
               for t in 10 20 40 80 160; do ablation "ens_t$t" --ensemble ens --num_iter "$t"; done ;;
        esac
        evaluate "$RESULTS_DIR/fig$figure/seed$seed" "$(join "${folders[@]}")" \
            --models "$(join "${NORMAL[@]}" "${ADV_TRAINED[@]}")"
    done
done
run "$PYTHON" -m svrens_tf.cli.report --results_dir "$RESULTS_DIR"
log "report: $RESULTS_DIR/report.md"
