"""Paper Figure 2: a trained novice's predicted next view for each action, beside the real one.

    python experiments/figure2.py --scale tiny|mini|small|paper [--experts scripted|trained]
                                  [--figure4-dir DIR] [--condition sociapl] [--seed-index 0]
                                  [--rows 3] [--out-dir DIR]

Reads the last checkpoint of a figure4.py run folder (default
``runs/figures/figure4[-trained]-<scale>``) and plays one episode of one run (``--condition``
and ``--seed-index``, default SociAPL's first seed) in its training world, the novice and its
partners acting as they trained (sampled actions). At every step the world, being a pure
function, is also stepped with each of the novice's seven actions from the same state (the
partners' actions as taken), which gives the view each action would really lead to, and the
novice's decoder predicts that view from its LSTM output and the action. Writes to
``--out-dir`` (default: the figure4 folder):

* ``figure2.png``: ``--rows`` steps of the episode (evenly spaced), each the observed view,
  then for left, right, forward and 'done' (one of the four actions that do nothing in Goal
  Cycle) the predicted next view above the real one;
* ``figure2.json``: per action, the prediction's mean absolute error against the real next
  view over every step of the episode (the paper: accurate for moves, less so for doing
  nothing, which the agent rarely chooses), and how often the novice chose each action.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helpers beside this script

import cli  # noqa: E402

SHOWN_ACTIONS = (0, 1, 2, 6)  # left, right, forward, and 'done' for "do nothing"


def play_with_every_action(run: Any, run_index: int, key: Any) -> dict[str, np.ndarray]:
    """One episode of run ``run_index`` of a loaded figure run: ``views`` [T+1, 21, 21, 3]
    (the novice's, uint8), ``real`` and ``predicted`` [T, A, 21, 21, 3] (the view each of its A actions
    leads to, uint8, and the decoder's prediction of it on the [0, 1] scale), ``chosen`` [T]."""
    import jax
    import jax.numpy as jnp

    from sociajax.agents.network import SocialNet
    from sociajax.eval.learned import evaluation_setup

    setup, env, stacked_env_params, stacked_params = evaluation_setup(run)
    population = setup.population
    if population.learned_agents[:1] != (0,):
        raise ValueError(f"agent 0 must be a learner with a network (roles {setup.roles})")
    env_params = jax.tree.map(lambda x: x[run_index], stacked_env_params)
    params = jax.tree.map(lambda x: x[run_index], stacked_params)
    epsilon = jnp.asarray(setup.run_epsilon(run_index + 1)[run_index])
    step_one = jax.vmap(env.step_state, in_axes=(0, 0, None))
    obs_of = jax.vmap(env.get_obs, in_axes=(0, None))
    num_actions = population.num_actions  # the novice's action set (7, or 3 with "move")
    every_action = jnp.arange(num_actions)

    @jax.jit
    def play(params, key):
        key_reset, key_run = jax.random.split(key)
        state = jax.vmap(env.reset_state, in_axes=(0, None))(key_reset[None], env_params)
        obs = obs_of(state, env_params)

        def body(carry, t):
            state, obs, rnn, memories, starts = carry
            actions, rnn, memories, _ = population.act(
                jax.random.fold_in(key_run, t), params, rnn, memories, obs, starts, state, False, epsilon
            )

            def real_view(action):  # the novice's next view had it taken ``action``
                moved, _, _ = step_one(state, actions.at[0, 0].set(action), env_params)
                return obs_of(moved, env_params)[0, 0]

            h = jnp.broadcast_to(rnn[1][0, 0], (num_actions, rnn[1].shape[-1]))  # the novice's LSTM output
            predicted = population.network.apply({"params": jax.tree.map(lambda p: p[0], params)}, h, every_action,
                                                 method=SocialNet.decode)
            real = jax.vmap(real_view)(every_action)
            next_state, _, _ = step_one(state, actions, env_params)
            out = (obs[0, 0], real, predicted, actions[0, 0])
            return (next_state, obs_of(next_state, env_params), rnn, memories, jnp.zeros_like(starts)), out

        init = (state, obs, population.initial_carry(1), population.init_memories(state), jnp.ones(1, bool))
        (_, last_obs, _, _, _), (views, real, predicted, chosen) = jax.lax.scan(
            body, init, jnp.arange(int(env_params.max_steps))
        )
        return jnp.concatenate([views, last_obs[None, 0, 0]]), real, predicted, chosen

    views, real, predicted, chosen = jax.device_get(play(params, key))
    return {"views": views, "real": real, "predicted": predicted, "chosen": chosen}


def prediction_errors(episode: dict[str, np.ndarray]) -> dict[str, Any]:
    """Per action name: mean absolute error of the prediction against the real next view
    (both on [0, 1]) over every step, and the share of steps the novice chose it."""
    from sociajax.envs.core import ACTION_NAMES

    error = np.abs(episode["predicted"] - episode["real"].astype(np.float32) / 255.0).mean(axis=(0, 2, 3, 4))
    names = ACTION_NAMES[: len(error)]  # the novice's action set: all 7, or the 3 moves
    chosen = np.bincount(episode["chosen"], minlength=len(names)) / len(episode["chosen"])
    return {name: {"mae": float(error[a]), "chosen_share": float(chosen[a])} for a, name in enumerate(names)}


def draw(episode: dict[str, np.ndarray], rows: int, title: str, out_png: Path) -> Path:
    """``rows`` evenly spaced steps: observed view, then per shown action predicted over real."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sociajax.envs.core import ACTION_NAMES

    steps = np.linspace(0, len(episode["chosen"]) - 1, rows).round().astype(int)
    shown = [a for a in SHOWN_ACTIONS if a < episode["predicted"].shape[1]]  # actions the novice has
    columns = 1 + len(shown)
    fig, axes = plt.subplots(2 * rows, columns, figsize=(1.7 * columns, 3.4 * rows), dpi=110, squeeze=False)
    for r, t in enumerate(steps):
        for ax in axes[2 * r : 2 * r + 2].ravel():
            ax.set_xticks([])
            ax.set_yticks([])
        axes[2 * r, 0].imshow(episode["views"][t])
        axes[2 * r, 0].set_title(f"observed, step {t}", fontsize=7)
        axes[2 * r + 1, 0].axis("off")
        for c, action in enumerate(shown, start=1):
            name = ACTION_NAMES[action] + (" (no-op)" if action > 2 else "")
            axes[2 * r, c].imshow(np.clip(episode["predicted"][t, action], 0.0, 1.0))
            axes[2 * r, c].set_title(f"{name}: predicted", fontsize=7)
            axes[2 * r + 1, c].imshow(episode["real"][t, action])
            axes[2 * r + 1, c].set_title(f"{name}: real", fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out_png)
    plt.close(fig)
    return out_png


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = cli.figure4_reader_parser(__doc__)
    parser.add_argument("--condition", default="sociapl", help="whose novice (a condition with an auxiliary loss)")
    parser.add_argument("--seed-index", type=int, default=0, help="which seed of the condition (0-based)")
    parser.add_argument("--rows", type=cli.positive_int, default=3, help="steps of the episode drawn")
    parser.add_argument("--episode-seed", type=int, default=0, help="PRNG seed of the episode played")
    args = parser.parse_args(argv)
    source = cli.figure4_dir_of(args)
    if not (source / "config.json").exists():
        raise FileNotFoundError(
            f"--figure4-dir {str(source)!r} holds no run; run `python experiments/figure4.py --scale {args.scale}` first"
        )
    import jax

    from sociajax.training.checkpoint import load_run
    from sociajax.training.trainer import make_train

    run = load_run(source)
    trainer = make_train(run.config)
    runs = [i for i, c in enumerate(trainer.run_conditions()) if c == args.condition]
    if not runs:
        raise ValueError(f"--condition {args.condition!r} is not a condition of {source} ({sorted(set(trainer.run_conditions()))})")
    if not 0 <= args.seed_index < len(runs):
        raise ValueError(f"--seed-index must be in 0..{len(runs) - 1} for {args.condition!r}, got {args.seed_index}")
    run_index = runs[args.seed_index]
    seed = int(trainer.run_seeds()[run_index])
    episode = play_with_every_action(run, run_index, jax.random.PRNGKey(args.episode_seed))
    out_dir = Path(args.out_dir) if args.out_dir else source
    out_dir.mkdir(parents=True, exist_ok=True)
    errors = prediction_errors(episode)
    summary = {
        "source": str(source), "condition": args.condition, "seed": seed, "update": int(np.asarray(run.state.update)[run_index]),
        "episode_seed": args.episode_seed, "steps": len(episode["chosen"]), "per_action": errors,
    }
    (out_dir / "figure2.json").write_text(json.dumps(summary, indent=2))
    title = (f"Figure 2: predicted next views of the {args.condition} novice (seed {seed}, update {summary['update']})"
             f"\nfrom {source}")
    print(draw(episode, args.rows, title, out_dir / "figure2.png"))
    for name, e in errors.items():
        print(f"  {name:<8} prediction MAE {e['mae']:.4f}   chosen {100 * e['chosen_share']:.1f}% of steps")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run_or_exit(main))
