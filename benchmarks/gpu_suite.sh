#!/usr/bin/env bash
# The GPU checks of one lease, in one call (see README "Benchmarks"): training throughput at the
# paper's schedule with 3 learners (SEEDS, default 16 vmapped seeds; 1 seed was measured on
# 2026-11-30), then environment throughput beside XLand-MiniGrid when its wheel is carried in
# .whl/. Results land in ${OUT:-benchmarks/results}. On an H200 one training point compiles for
# about 4 minutes (the unrolled paper update), so TRAIN_TIMEOUT allows one point per call.
set -uo pipefail
OUT=${OUT:-benchmarks/results}
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv || true
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
timeout "${TRAIN_TIMEOUT:-420}" python3 -m benchmarks.train_throughput --learners 3 --num-envs 128 \
  --num-seeds ${SEEDS:-16} --updates 3 --out "$OUT" --tag "${TAG:-h200}" 2>&1 | tee "$OUT/train_log.txt"
timeout "${ENV_TIMEOUT:-120}" python3 -m benchmarks.env_throughput --num-envs 1024 16384 65536 \
  --peers xminigrid --out "$OUT" --tag "${TAG:-h200}" 2>&1 | tee "$OUT/env_log.txt"
