#!/usr/bin/env bash
# The GPU checks of one lease, in one call (see README "Benchmarks"), most important first, each
# under its own timeout so that a slow compile costs only its own point:
#   1. training throughput at the paper's schedule, 3 learners, SEEDS vmapped seeds (the target);
#   2. the same with one LSTM step per loop iteration (lstm_unroll 1 against the GPU default 8);
#   3. paper-social's population (1 learner + 2 scripted oracles), one seed;
#   4. with ENV=1, environment throughput beside XLand-MiniGrid (its wheel carried in .whl/).
# Results land in ${OUT:-benchmarks/results}; each JSON is rewritten after every point, so a point
# cut short leaves the earlier ones. The H200 compiled the old, unrolled paper update in about
# 4 minutes; it now scans its 10 minibatch groups (on CPU that cut compiling 64 s -> 9 s).
set -uo pipefail
OUT=${OUT:-benchmarks/results}
TAG=${TAG:-h200}
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv || true
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
train() {  # train TIMEOUT TAG ARGS...
  local limit=$1 tag=$2; shift 2
  timeout "$limit" python3 -m benchmarks.train_throughput --num-envs 128 --updates 3 --out "$OUT" --tag "$tag" "$@" \
    2>&1 | tee -a "$OUT/train_log.txt"
}
train "${TRAIN_TIMEOUT:-300}" "$TAG" --learners 3 --num-seeds ${SEEDS:-1 16}
train "${CMP_TIMEOUT:-120}" "${TAG}_lstm_unroll1" --learners 3 --num-seeds 1 --lstm-unroll 1
train "${CMP_TIMEOUT:-120}" "${TAG}_social" --learners 1 --num-seeds 1
if [ "${ENV:-0}" = 1 ]; then
  timeout "${ENV_TIMEOUT:-120}" python3 -m benchmarks.env_throughput --num-envs 1024 16384 65536 \
    --peers xminigrid --out "$OUT" --tag "$TAG" 2>&1 | tee "$OUT/env_log.txt"
fi
