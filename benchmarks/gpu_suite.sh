#!/usr/bin/env bash
# The GPU checks of one lease, in one call of at most 10 minutes (see README "Benchmarks"), most
# important first, each under its own timeout, and all under one deadline (BUDGET seconds from
# the start), so that a slow compile costs only its own point and the call still returns:
#   1. training throughput at the paper's schedule, 3 learners, SEEDS vmapped seeds (1 16 64),
#      float32: env-steps/s, compile time, peak device memory per seed, Figure 4's projection;
#   2. the same in bfloat16 (--network.dtype bfloat16);
#   3. one LSTM step per loop iteration (lstm_unroll 1 against the GPU default 8), one seed;
#   4. paper-social's population (1 learner + 2 scripted oracles), one seed;
#   5. with ENV=1, environment throughput beside XLand-MiniGrid (its wheel carried in .whl/).
# Results land in ${OUT:-benchmarks/results}: one JSON per step (rewritten after every point, so a
# step cut short keeps its earlier points), train_log.txt, and gpu_suite_${TAG}.json, which lists
# every point of the steps above and the suite's settings.
#
# Memory: JAX takes 75% of GPU memory at start by default. The suite raises that to
# XLA_PYTHON_CLIENT_MEM_FRACTION=0.95 (64 seeds need most of it); the reported peak is the
# allocator's high-water mark inside that pool, so it is right either way. Set
# XLA_PYTHON_CLIENT_PREALLOCATE=false to allocate on demand (slower; nvidia-smi then shows real use).
#
# TINY=1 runs every step at toy sizes (32-step episodes, 4 envs, 2 minibatches of 4 segments,
# one seed, one timed update, XLA's CPU optimisations off) to test the script on a CPU:
# tests/benchmarks/test_gpu_suite.py runs it so (slow: each step's process compiles for about a minute).
set -uo pipefail
OUT=${OUT:-benchmarks/results}
TAG=${TAG:-h200}
PYTHON=${PYTHON:-python3}
BUDGET=${BUDGET:-570}  # seconds for the whole suite: a 10-minute call, with time to copy results back
export PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.95}
mkdir -p "$OUT"
START=$SECONDS
if [ "${TINY:-0}" = 1 ]; then
  SIZE=(--num-envs 4 --updates 1 --schedule tiny --max-steps 32 --matmul-size 256)
  SEEDS=${SEEDS:-1}
  # A CPU spends most of a tiny point compiling (72-124 s on 2 busy cores at full optimisation).
  export XLA_FLAGS=${XLA_FLAGS:---xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true}
  BUDGET=${TINY_BUDGET:-1500}
  : "${TRAIN_TIMEOUT:=400}" "${CMP_TIMEOUT:=300}"
else
  SIZE=(--num-envs 128 --updates 3)
  SEEDS=${SEEDS:-1 16 64}
fi
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv 2>/dev/null || true
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
left() {  # seconds left of BUDGET, capped at $1
  local rest=$((BUDGET - (SECONDS - START)))
  if [ "$rest" -gt "$1" ]; then echo "$1"; else echo "$rest"; fi
}
train() {  # train TIMEOUT TAG ARGS...
  local limit tag=$2
  limit=$(left "$1"); shift 2
  if [ "$limit" -le 5 ]; then echo "skipped $tag: the suite's budget is spent" | tee -a "$OUT/train_log.txt"; return; fi
  echo "== $tag (timeout ${limit}s)" | tee -a "$OUT/train_log.txt"
  timeout "$limit" "$PYTHON" -m benchmarks.train_throughput "${SIZE[@]}" --out "$OUT" --tag "$tag" "$@" \
    2>&1 | tee -a "$OUT/train_log.txt"
}
# shellcheck disable=SC2086  # SEEDS is a list
train "${TRAIN_TIMEOUT:-240}" "${TAG}_f32" --learners 3 --num-seeds $SEEDS --dtype float32
# shellcheck disable=SC2086
train "${TRAIN_TIMEOUT:-240}" "${TAG}_bf16" --learners 3 --num-seeds $SEEDS --dtype bfloat16
train "${CMP_TIMEOUT:-60}" "${TAG}_lstm_unroll1" --learners 3 --num-seeds 1 --lstm-unroll 1
train "${CMP_TIMEOUT:-60}" "${TAG}_social" --learners 1 --num-seeds 1
if [ "${ENV:-0}" = 1 ]; then
  timeout "$(left "${ENV_TIMEOUT:-120}")" "$PYTHON" -m benchmarks.env_throughput --num-envs 1024 16384 65536 \
    --peers xminigrid --out "$OUT" --tag "$TAG" 2>&1 | tee "$OUT/env_log.txt"
fi
"$PYTHON" -m benchmarks.train_throughput --summarize "$OUT" --tag "$TAG" --suite-seconds $((SECONDS - START))
