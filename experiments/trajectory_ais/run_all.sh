#!/usr/bin/env bash
# Every measurement of experiments/trajectory_ais/drift.json, one after another on one thread (about an hour on
# the 2-core project machine), then the summary. Run from the repository root:
#
#     bash experiments/trajectory_ais/run_all.sh [work folder, default /tmp/trajectory_ais]
#
# The work folder keeps the recorded trajectories (30 MB) and each step's JSON; the references (a 14,501-beta
# AIS at each of the demo's 30 epochs, seven minutes) are cached there, so a rerun skips them.
set -euo pipefail
W=${1:-/tmp/trajectory_ais}
mkdir -p "$W"
export OMP_NUM_THREADS=1 NATURAL_BM_DATA=${NATURAL_BM_DATA:-$(pwd)/../shared/data/mnist}
P=${PYTHON:-.venv/bin/python}
E=experiments/trajectory_ais
# the demo's training (784-200) and a 784-20 one whose log Z is exact, each with the per-update estimators live
$P $E/record.py --hidden 200 --epochs 30 --every-update --out "$W/traj200.pt"
$P $E/record.py --hidden 20 --epochs 30 --every-update --out "$W/traj20.pt"
# the epoch-to-epoch variants against the references
$P $E/compare.py "$W/traj200.pt" --refs "$W/refs200.json" --ais-epochs $(seq 0 29) --out "$W/demo.json" \
    --variants own:100:0.5:1e-4 'own:100:0.5:1e-4@5:5000' fresh:0.5:1e-4 bar:1e-4 \
    'own:100:0.5:1e-4#1:5000' 'own:100:0.5:1e-4#2:5000' 'own:100:0.5:1e-4#3:5000'
$P $E/compare.py "$W/traj20.pt" --refs "$W/refs20.json" --out "$W/rbm20.json" \
    --variants own:100:0.5:1e-4 own:100:0.0:1e-4 own:100:0.9:1e-4 own:100:0.5:1e-5:5000 own:1000:0.5:1e-4 \
    'own:100:0.5:1e-4@5:5000' fresh:0.5:1e-4 reverse:1e-4 bar:1e-4
# what a re-anchoring AIS costs and how close it lands; the training chains' bias on a 12-8 RBM
$P $E/anchor_cost.py "$W/traj200.pt" --refs "$W/refs200.json" --out "$W/anchor_cost.json"
$P $E/bias.py --out "$W/bias.json"
# the callback's cost per epoch beside the training epoch (the demo's model and learning rate)
for run in "own 1" "own 0" "training 0"; do
    set -- $run
    $P scripts/bench_trajectory.py --hidden 200 --lr 0.002 --n-train 50000 --epochs 3 --chains "$1" \
        --reanchor-every "$2" > "$W/bench_$1_$2.txt"
done
$P $E/summarise.py "$W" --out $E/drift.json
