"""SocialNet of another commit against this checkout's, timed in turns in one process.

    python -m benchmarks.network_ab --ref COMMIT [--rounds 31] [--out benchmarks/results/X.json]

For refactors of ``sociajax/agents/network.py`` that must keep its speed: the file at ``--ref``
is loaded as a separate module beside the current one, both are jitted on the same inputs,
and each round times one call of each, so a busy machine slows both alike. Two workloads: the
gradient of a PPO minibatch's loss (16 steps x 32 segments, decoder error included) and a
whole-rollout forward pass (64 steps x 64 episodes, a recompute). Reports the median time of
each and the median of the per-round ratios (this checkout / ``--ref``), with the CPU model.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.records import write_record
from sociajax.host import cpu_model

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = {"minibatch_grad_16x32": (16, 32, True), "rollout_forward_64x64": (64, 64, False)}


def load_network_at(ref: str, folder: Path) -> Any:
    """The module ``sociajax/agents/network.py`` as it is at git ``ref``."""
    source = subprocess.run(
        ["git", "show", f"{ref}:sociajax/agents/network.py"], cwd=ROOT, capture_output=True, text=True
    )
    if source.returncode != 0:
        raise ValueError(f"--ref {ref!r}: {source.stderr.strip()}")
    path = folder / "network_at_ref.py"
    path.write_text(source.stdout)
    spec = importlib.util.spec_from_file_location("network_at_ref", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # flax's dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def workload(module: Any, steps: int, batch: int, grad: bool) -> Callable[[], float]:
    """A function timing one jitted call (compiled first) of ``module``'s SocialNet."""
    rng = np.random.default_rng(0)
    net = module.SocialNet()
    params = module.init_params(net, jax.random.PRNGKey(0))
    obs = jnp.asarray(rng.integers(0, 256, (steps, batch, 21, 21, 3)), jnp.uint8)
    starts = jnp.asarray(rng.random((steps, batch)) < 0.05)
    actions = jnp.asarray(rng.integers(0, 3, (steps, batch)), jnp.int32)
    carry = net.initial_carry((batch,))

    def loss(p: Any) -> jax.Array:
        out = net.apply({"params": p}, carry, obs, starts, actions, obs, method=module.SocialNet.unroll)
        return out.logits.sum() + out.value.sum() + out.aux_error.sum()

    fn = jax.jit(jax.grad(loss)) if grad else jax.jit(loss)
    jax.block_until_ready(fn(params))

    def timed() -> float:
        start = time.perf_counter()
        jax.block_until_ready(fn(params))
        return time.perf_counter() - start

    return timed


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", required=True, help="git commit of the network to compare against")
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the results")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        raise SystemExit(f"error: --rounds must be a positive integer, got {args.rounds}")
    from sociajax.agents import network as current

    with tempfile.TemporaryDirectory() as folder:
        try:
            old = load_network_at(args.ref, Path(folder))
        except ValueError as err:
            raise SystemExit(f"error: {err}") from None
        results = {}
        for name, (steps, batch, grad) in WORKLOADS.items():
            run_old, run_new = workload(old, steps, batch, grad), workload(current, steps, batch, grad)
            times = np.array([(run_old(), run_new()) for _ in range(args.rounds)])
            results[name] = {
                "ref_median_ms": round(float(np.median(times[:, 0])) * 1e3, 1),
                "current_median_ms": round(float(np.median(times[:, 1])) * 1e3, 1),
                "median_ratio_current_over_ref": round(float(np.median(times[:, 1] / times[:, 0])), 3),
            }
            print(f"{name}: ref {results[name]['ref_median_ms']} ms, this checkout "
                  f"{results[name]['current_median_ms']} ms, ratio {results[name]['median_ratio_current_over_ref']}")
    model, avx512 = cpu_model()
    record = {"ref": args.ref, "rounds": args.rounds, "cpu": model, "avx512": avx512, "jax": jax.__version__,
              "results": results}
    write_record(args.out, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
