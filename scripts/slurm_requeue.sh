#!/bin/bash
# A SLURM batch job that trains a natural_bm config and requeues itself until the run is done.
#
#   sbatch scripts/slurm_requeue.sh CONFIG RESULTS_DIR [more natural-bm train options, e.g. --set seed=3]
#
# The same command starts the run and continues it: `natural-bm train CONFIG --resume DIR` starts CONFIG in
# DIR when DIR holds no run yet (missing, empty, or only the lock of a run killed at its start) and resumes
# it from its newest checkpoint otherwise. SLURM sends SIGUSR1 to the job step 180 s before the time limit
# (--signal below; a pre-emption sends SIGTERM): natural-bm finishes the current update, keeps its newest
# checkpoint (the last epoch boundary) and exits with status 75 (EX_TEMPFAIL). This script then requeues
# the job, which resumes bit-identically where the run stopped. Any other status ends the job: 0 done,
# 2 an error (one line on stderr), 3 diverged (lower the learning rate in RESULTS_DIR/config.json first).
#
# Set the time, partition and resources for your cluster; 180 s must cover one epoch's end (its AIS,
# when ais.epochs asks for one) on it.
#SBATCH --job-name=natural-bm
#SBATCH --time=04:00:00
#SBATCH --cpus-per-task=4
#SBATCH --signal=USR1@180
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=natural-bm-%x-%j.out

set -u
CONFIG=${1:?usage: sbatch scripts/slurm_requeue.sh CONFIG RESULTS_DIR [natural-bm train options]}
OUT=${2:?usage: sbatch scripts/slurm_requeue.sh CONFIG RESULTS_DIR [natural-bm train options]}
shift 2
EXIT_PREEMPTED=75

export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
echo "natural-bm job ${SLURM_JOB_ID:-?} (restart ${SLURM_RESTART_COUNT:-0}) on $(hostname): $CONFIG -> $OUT"
# a pre-emption signals this shell too: let natural-bm checkpoint, then requeue below
trap 'echo "natural-bm: SIGTERM; waiting for the run to stop at its next update"' TERM
# srun makes natural-bm the job step, which is what --signal=USR1@180 signals
srun --kill-on-bad-exit=1 natural-bm train "$CONFIG" --resume "$OUT" --verbose 2 "$@"
status=$?
if [ "$status" -eq "$EXIT_PREEMPTED" ]; then
    echo "natural-bm: pre-empted; requeueing job $SLURM_JOB_ID to resume $OUT"
    scontrol requeue "$SLURM_JOB_ID"
    exit 0
fi
exit "$status"
