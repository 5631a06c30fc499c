#!/usr/bin/env bash
# The GPU checks of one lease, in one call (see README "Benchmarks"): training throughput at the
# paper's schedule with 3 learners (SEEDS: vmapped seeds of each point), then environment
# throughput beside XLand-MiniGrid when its wheel is carried in .whl/. Results land in
# ${OUT:-benchmarks/results}, the JSON after every point. On 2026-11-30 an H200 compiled the
# then-unrolled paper update for about 4 minutes; the update now scans its 10 minibatch groups
# (PPOConfig.minibatch_loop="auto"; on CPU that cut compiling 64 s -> 9 s), so SEEDS (default
# "1 16") may list several points; a point that runs out of TRAIN_TIMEOUT leaves the earlier
# ones written.
set -uo pipefail
OUT=${OUT:-benchmarks/results}
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv || true
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
timeout "${TRAIN_TIMEOUT:-420}" python3 -m benchmarks.train_throughput --learners 3 --num-envs 128 \
  --num-seeds ${SEEDS:-1 16} --updates 3 --out "$OUT" --tag "${TAG:-h200}" 2>&1 | tee "$OUT/train_log.txt"
timeout "${ENV_TIMEOUT:-120}" python3 -m benchmarks.env_throughput --num-envs 1024 16384 65536 \
  --peers xminigrid --out "$OUT" --tag "${TAG:-h200}" 2>&1 | tee "$OUT/env_log.txt"
