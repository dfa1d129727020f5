#!/usr/bin/env bash
# Every GPU check and measurement the open issues ask for, in one run for a session lent a GPU
# (about 9 minutes on an H200; results under ${OUT:-gpu_results}: all.log, and one table per benchmark).
# On the device machine python3 has torch with CUDA: run from the repository root, e.g.
# `OUT=$OUT bash scripts/gpu_checks.sh`.
# MNIST: the device machine gets the working tree only, so first copy the data into the (ignored)
# results/ folder here and carry it: `mkdir -p results/mnist && cp ../shared/data/mnist/*.gz results/mnist/`,
# then run with carry ["results/mnist"] and NATURAL_BM_DATA=results/mnist.
# Steps run most important first, each under its own time limit, and a step is skipped when less than
# its limit is left of BUDGET seconds (default 560), so the run ends inside the device call's limit.
# A quick check of the script itself, on a CPU: QUICK=1 (small sizes, no CUDA tests).
# DBM=1 also trains the 784-500-1000 DBM of dbm500_1000_recipe.yaml on the GPU (#17), capped at 8 minutes
# with a checkpoint every epoch: ask for the whole 15-minute budget for that, and skip the rest with ONLY_DBM=1.
# DBM3=1 trains the 3-layer DBM's second round instead (issue 30; see its step below), ONLY_DBM3=1 alone.
set -u
OUT=${OUT:-gpu_results}
BUDGET=${BUDGET:-560}
DEV=cuda; ROWS=60000; BETAS=14501; REPEATS=3
if [ "${QUICK:-0}" = 1 ]; then DEV=cpu; ROWS=1000; BETAS=301; REPEATS=1; fi
mkdir -p "$OUT"
export PYTHONPATH=.
export PYTHONUNBUFFERED=1
export NATURAL_BM_DATA=${NATURAL_BM_DATA:-../shared/data/mnist}
LOG="$OUT/all.log"
step() {  # step NAME LIMIT_S COMMAND...: runs it with its output appended to all.log
  local name=$1 limit=$2; shift 2
  local left=$((BUDGET - SECONDS))
  if [ "$left" -lt "$limit" ]; then echo "== $name: skipped ($left s left, needs $limit)" | tee -a "$LOG"; return; fi
  echo "== $name (limit $limit s, at $SECONDS s)" | tee -a "$LOG"
  timeout "$limit" "$@" >> "$LOG" 2>&1
  echo "   $name exit $? after $SECONDS s" | tee -a "$LOG"
}
keep_newest_checkpoint() {  # keep_newest_checkpoint RUN_DIR: the newest epoch's weights and state files only, so
  # that what comes back stays small and --resume still finds a whole checkpoint (both files of one epoch)
  local newest
  newest=$(ls "$1"/checkpoints/ 2>/dev/null | sed -n 's/.*_epoch\([0-9]*\)\.pt$/\1/p' | sort | tail -1)
  [ -n "$newest" ] && find "$1/checkpoints" -name '*.pt' ! -name "*_epoch$newest.pt" -delete
}
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1; python3 -c "import torch; print(torch.__version__, torch.cuda.is_available())"; } >> "$LOG" 2>&1
if [ "${DBM:-0}" = 1 ]; then
  sed 's/^seed: 0$/seed: 0\ndevice: cuda/' experiments/dbm_mnist_sh2009/dbm500_1000_recipe.yaml > "$OUT/dbm_recipe.yaml"
  timeout 480 python3 -m natural_bm.cli train "$OUT/dbm_recipe.yaml" --out "$OUT/dbm_recipe" --verbose 2 \
    > "$OUT/dbm_recipe.log" 2>&1; echo "dbm_recipe exit $?"; tail -3 "$OUT/dbm_recipe.log"
  keep_newest_checkpoint "$OUT/dbm_recipe"
  [ "${ONLY_DBM:-0}" = 1 ] && exit 0
fi
# DBM3=1: the 3-layer DBM's second round (issue 30: experiments/dbm_mnist_sh2009/
# dbm500_500_1000_pretrained_centred_long.yaml, from the shipped 3-layer weights) on the GPU, then its final
# forward and reverse AIS and importance sampling, capped at DBM3_LIMIT seconds (default 720) with a checkpoint
# every epoch; the run folder comes back under $OUT/dbm3 (the newest epoch's checkpoint only). Ask for the whole
# 15-minute budget and skip the rest with ONLY_DBM3=1. With QUICK=1 a tiny version on the CPU (a few hundred
# rows, 2 epochs, a short AIS): the check of this step itself.
if [ "${DBM3:-0}" = 1 ]; then
  DBM3_SET=(--set "device=$DEV")
  if [ "${QUICK:-0}" = 1 ]; then
    DBM3_SET+=(--set data.n_train=300 --set data.n_valid=100 --set training.epochs=2 --set ais.n_runs=4
               --set ais.n_betas=101 --set ais.reverse_gibbs=5 --set ais.importance_samples=2)
  fi
  timeout --signal=TERM "${DBM3_LIMIT:-720}" python3 -m natural_bm.cli train \
    experiments/dbm_mnist_sh2009/dbm500_500_1000_pretrained_centred_long.yaml --out "$OUT/dbm3" --verbose 2 \
    "${DBM3_SET[@]}" > "$OUT/dbm3.log" 2>&1
  echo "dbm3 exit $? (0 done, 75 stopped at the limit: resume from the newest checkpoint)" | tee -a "$LOG"
  tail -3 "$OUT/dbm3.log"
  keep_newest_checkpoint "$OUT/dbm3"
  [ "${ONLY_DBM3:-0}" = 1 ] && exit 0
fi
# 1. the CUDA tests: CUDA against CPU and numpy, DBM AIS replayed from a CUDA graph, the training update
#    replayed from a CUDA graph against the ordinary path
[ "$DEV" = cuda ] && step test_cuda 170 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py
# 2. training speed against the bare loop; CUDA graph on and off; PCD; the DBM's epoch for proportion
step bench_rbm 130 python3 scripts/bench_rbm.py --device "$DEV" --rows "$ROWS" --repeats "$REPEATS" --out "$OUT/bench_rbm.md"
# 3. where the time goes (kernels against wall), training and AIS
[ "$DEV" = cuda ] && step profile 70 python3 scripts/profile_gpu.py --rows "$ROWS" --betas "$BETAS" --out "$OUT/profile.txt"
# 3b. the fit loop's host work per batch on this machine's CPU (what bounds a graphed epoch)
step bench_fit_overhead 40 python3 scripts/bench_fit_overhead.py --repeats 3 --out "$OUT/bench_fit_overhead.md"
# 4. AIS speed against the bare loops (the exact log Z timings are a CPU target)
step bench_ais 90 python3 scripts/bench_ais.py --device "$DEV" --betas "$BETAS" --repeats "$REPEATS" --no-exact --out "$OUT/bench_ais.md"
# 5. one process on the GPU in the scaling table (one GPU: no second rank)
step bench_scale 60 python3 scripts/bench_scale.py --device "$DEV" --procs 1 --rows "$((ROWS < 50000 ? ROWS : 50000))" --betas "$BETAS" --out "$OUT/bench_scale.md"
ls -la "$OUT" | tee -a "$LOG"
