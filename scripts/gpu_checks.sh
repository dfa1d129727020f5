#!/usr/bin/env bash
# Every GPU check and measurement the open issues ask for, in one run for a session lent a GPU
# (about 10 minutes on an H100; results under ${OUT:-gpu_results}). On the device machine, python3 has
# torch with CUDA: run from the repository root, e.g. `OUT=$OUT bash scripts/gpu_checks.sh`.
# MNIST: the device machine gets the working tree only, so first copy the data into the (ignored)
# results/ folder here and carry it: `mkdir -p results/mnist && cp ../shared/data/mnist/*.gz results/mnist/`,
# then run with carry ["results/mnist"] and NATURAL_BM_DATA=results/mnist.
# DBM=1 also trains the 784-500-1000 DBM of dbm500_1000_recipe.yaml on the GPU (#17), capped at 8 minutes
# with a checkpoint every epoch: ask for the whole 15-minute budget for that, and skip the rest with ONLY_DBM=1.
set -u
OUT=${OUT:-gpu_results}
mkdir -p "$OUT"
export PYTHONPATH=.
export NATURAL_BM_DATA=${NATURAL_BM_DATA:-../shared/data/mnist}
step() { local name=$1; shift; echo "== $name"; timeout 240 "$@" > "$OUT/$name.log" 2>&1; echo "   exit $?"; }
if [ "${DBM:-0}" = 1 ]; then
  sed 's/^seed: 0$/seed: 0\ndevice: cuda/' experiments/dbm_mnist_sh2009/dbm500_1000_recipe.yaml > "$OUT/dbm_recipe.yaml"
  timeout 480 python3 -m natural_bm.cli train "$OUT/dbm_recipe.yaml" --out "$OUT/dbm_recipe" --verbose 2 \
    > "$OUT/dbm_recipe.log" 2>&1; echo "dbm_recipe exit $?"; tail -3 "$OUT/dbm_recipe.log"
  # keep the newest checkpoint only, so that what comes back stays small
  ls "$OUT"/dbm_recipe/checkpoints/*.pt 2>/dev/null | sort | head -n -2 | xargs -r rm
  [ "${ONLY_DBM:-0}" = 1 ] && exit 0
fi
# 1. the CUDA tests, including DBM AIS replayed from a CUDA graph (never run on a GPU yet)
timeout 300 python3 -m pytest -q tests/test_cuda.py > "$OUT/test_cuda.log" 2>&1; echo "test_cuda exit $?"; tail -3 "$OUT/test_cuda.log"
# 2. training and AIS speed against the bare loops
step bench_rbm python3 scripts/bench_rbm.py --device cuda --repeats 3 --out "$OUT/bench_rbm.md"
step bench_ais python3 scripts/bench_ais.py --device cuda --repeats 3 --out "$OUT/bench_ais.md"
# 3. one process on the GPU in the scaling table (one GPU: no second rank)
step bench_scale python3 scripts/bench_scale.py --device cuda --procs 1 --rows 50000 --betas 14501 --out "$OUT/bench_scale.md"
# 4. the shipped MNIST models' log Z with 100,001 betas each way (#17; hours on 2 CPU cores, seconds here)
for m in experiments/rbm_mnist_sm2008/models/rbm500_pcd_decay.pt experiments/rbm_mnist_sm2008/models/rbm500_cd25.pt \
         experiments/dbm_mnist_sh2009/models/dbm500_1000.pt; do
  step "logz_$(basename "$m" .pt)" python3 -m natural_bm.cli logz "$m" --betas 100001 --reverse --device cuda --json
done
ls -la "$OUT"
