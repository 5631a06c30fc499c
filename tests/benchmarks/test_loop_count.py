"""``benchmarks.loop_count`` reads loop iterations out of compiled programs correctly."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from benchmarks.loop_count import LoopCount, count_loops


def _compiled_text(fun, *args) -> str:
    return jax.jit(fun).lower(*args).compile().as_text()


def test_nested_loops_multiply_conditionals_take_the_costlier_branch() -> None:
    def program(x):
        def outer(c, _):
            c, _ = jax.lax.scan(lambda d, _: (jnp.sin(d) * 1.1, None), c, None, length=3)
            return c, None

        x, _ = jax.lax.scan(outer, x, None, length=10)  # 10 x (1 + 3)
        x = jax.lax.fori_loop(0, 5, lambda i, d: jnp.cos(d) + i, x)  # 5
        x = jax.lax.while_loop(lambda d: jnp.sum(d) < 100.0, lambda d: d * 2.0 + 1.0, x)  # data-dependent
        loop7 = lambda d: jax.lax.fori_loop(0, 7, lambda i, e: jnp.tanh(e) + i, d)
        return jax.lax.cond(jnp.sum(x) > 0, loop7, lambda d: d, x)  # at most 7

    assert count_loops(_compiled_text(program, jnp.ones(4))) == LoopCount(iterations=40 + 5 + 7, dynamic_entries=1)


def test_a_data_dependent_loop_inside_a_counted_loop_is_entered_each_iteration() -> None:
    def program(x):
        grow = lambda d: jax.lax.while_loop(lambda e: jnp.sum(e) < 50.0, lambda e: e * 1.5 + 0.1, d)
        x, _ = jax.lax.scan(lambda c, _: (grow(c) * 0.01, None), x, None, length=6)
        return x

    assert count_loops(_compiled_text(program, jnp.ones(3))) == LoopCount(iterations=6, dynamic_entries=6)


def test_text_without_an_entry_computation_is_refused() -> None:
    with pytest.raises(ValueError, match="no ENTRY computation"):
        count_loops("not hlo")
