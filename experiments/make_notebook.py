"""Build ``experiments/explore_envs.ipynb`` from the cells below (outputs stripped).

    python experiments/make_notebook.py

Edit the notebook here, not in Jupyter, so the committed JSON stays valid and output-free;
``tests/test_notebook.py`` executes the result.
"""

from __future__ import annotations

import os

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CELLS: list[tuple[str, str]] = [
    (
        "md",
        """\
# Exploring the sociajax environments

The gridworlds of *Emergent Social Learning via Multi-agent Reinforcement Learning* (Ndousse et
al., ICML 2021) as pure JAX functions: Goal Cycle, Four Rooms and Maze. This notebook covers
`make`, `reset` / `step` under `jit` and `vmap`, egocentric views and full frames, hand-built
layouts, a scripted episode as a GIF, and how fast a batched rollout runs.

Runs top to bottom in about a minute on 2 CPU cores. The GIF goes to `OUT_DIR`, which the
environment variable `SOCIAJAX_NB_OUT` can redirect.""",
    ),
    (
        "code",
        """\
import os

# Parameters
NUM_ENVS = 256   # batch size of the timed rollout (section 6)
NUM_STEPS = 100  # steps per timed rollout
SEED = 0
OUT_DIR = os.environ.get("SOCIAJAX_NB_OUT", "outputs")""",
    ),
    (
        "code",
        """\
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, display

import sociajax
import sociajax.eval
import sociajax.viz
from sociajax.agents import make_policy
from sociajax.envs import ACTION_NAMES

print(f"sociajax {sociajax.__version__}, jax {jax.__version__} on {jax.devices()}")


def show_views(obs, titles=None, size=2.4):
    \"\"\"Agents' 21x21 egocentric views side by side, enlarged without smoothing.\"\"\"
    obs = np.asarray(obs)
    fig, axes = plt.subplots(1, len(obs), figsize=(size * len(obs), size), squeeze=False)
    for i, ax in enumerate(axes[0]):
        ax.imshow(obs[i], interpolation="nearest")
        ax.set_title(titles[i] if titles else f"agent {i}")
        ax.axis("off")
    plt.show()


def show_frame(frame, title=None, size=3.5):
    plt.figure(figsize=(size, size))
    plt.imshow(np.asarray(frame), interpolation="nearest")
    plt.title(title)
    plt.axis("off")
    plt.show()""",
    ),
    (
        "md",
        """\
## 1. Making environments

`sociajax.make(id, **overrides)` returns a stateless env object and its params. Options that set
array shapes (`n_agents`, `size`, `n_walls`, ...) are static and live on the env: each
configuration compiles once. Everything else (`penalty`, `max_steps`, `prestige_decay`, ...) is
a traced field of `params`, so one compiled step serves any values.""",
    ),
    (
        "code",
        """\
print("registered:", sociajax.registered_envs(), "(GoalCycle-N for any N in 1..10)")
env, params = sociajax.make("GoalCycle-3")
print(env)
print(params)

solo_env, solo_params = sociajax.make("GoalCycle-3", penalty=0.0, n_agents=1)
print(solo_env)
print(solo_params)

try:
    sociajax.make("GoalCycle-3", penalti=0.0)
except ValueError as err:
    print("ValueError:", err)""",
    ),
    (
        "md",
        """\
## 2. Reset and step under `jit`

`obs` is uint8 `[n_agents, 21, 21, 3]`: each agent's 7x7-cell view at 3 px per cell, the agent
at view row 5 (one row behind it is seen) pointing up, cells hidden by walls in shadow (the
original code's line of sight; section 4 sets it beside MiniGrid's). Other agents are drawn
in a colour from red (no prestige) to blue (recent rewards).
Actions are MiniGrid's seven; only 0 left, 1 right and 2 forward do anything here.""",
    ),
    (
        "code",
        """\
reset = jax.jit(env.reset)
step = jax.jit(env.step)
render = jax.jit(env.render, static_argnames="tile_px")  # eager JAX would dispatch op by op

key = jax.random.PRNGKey(SEED)
key, key_reset, key_step = jax.random.split(key, 3)
obs, state = reset(key_reset, params)
print("obs", obs.shape, obs.dtype, "| actions:", dict(enumerate(ACTION_NAMES)))

actions = jnp.array([2, 1, 0], jnp.int32)  # agent 0 forward, 1 turns right, 2 turns left
obs, state, reward, done, info = step(key_step, state, actions, params)
print("reward", reward, "done", done, "time", state.time)
print("agent_pos (x, y)", state.agent_pos.tolist(), "agent_dir", state.agent_dir.tolist())
show_views(obs)""",
    ),
    (
        "md",
        """\
The whole grid (`env.render`, jitted above) and the map as text (`layout`: `#` wall, `.` floor,
goals `0`..`9` in their hidden cycle order; agents are not part of it). Agents in the full
frame point in their own direction.""",
    ),
    (
        "code",
        """\
show_frame(render(state, params, tile_px=16), "env.render(state, params, tile_px=16)")
print("\\n".join(env.layout(state)))""",
    ),
    (
        "md",
        """\
## 3. Batches with `vmap` and `VecEnv`

Everything vmaps: `jax.vmap(env.reset)` over keys gives a batch of states, and
`jax.vmap(env.step)` works too, but under `vmap` the auto-reset's `lax.cond` becomes a select,
so every step would pay for a fresh layout. `sociajax.VecEnv` steps the batch without resets and
builds layouts only on steps where some episode ended; it takes the same batched states.""",
    ),
    (
        "code",
        """\
B = 8
key, key_reset = jax.random.split(key)
reset_b = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))
obs_b, state_b = reset_b(jax.random.split(key_reset, B), params)
print("vmap(reset): obs", obs_b.shape, "agent_pos", state_b.agent_pos.shape, "time", state_b.time.shape)

venv = sociajax.VecEnv(env, B)  # venv.reset(key, params) splits the key and vmaps env.reset, as above
venv_step = jax.jit(venv.step)
obs_v, state_v = obs_b, state_b
for _ in range(10):
    key, key_act, key_step = jax.random.split(key, 3)
    actions_v = jax.random.randint(key_act, (venv.num_envs, env.n_agents), 0, 3)
    obs_v, state_v, reward_v, done_v, info_v = venv_step(key_step, state_v, actions_v, params)
print("VecEnv.step: obs", obs_v.shape, "reward", reward_v.shape, "done", done_v.shape, "time", state_v.time.tolist())

frames_v = jax.jit(jax.vmap(lambda s: env.render(s, params, tile_px=6)))(state_v)
fig, axes = plt.subplots(2, B, figsize=(1.5 * B, 3))
for i in range(B):
    axes[0, i].imshow(np.asarray(frames_v[i]), interpolation="nearest")
    axes[1, i].imshow(np.asarray(obs_v[i, 0]), interpolation="nearest")
    axes[0, i].set_title(f"env {i}", fontsize=8)
for ax in axes.ravel():
    ax.axis("off")
fig.suptitle("8 envs after 10 random steps: full frames, and agent 0's view", fontsize=9)
plt.show()""",
    ),
    (
        "md",
        """\
## 4. Hand-built layouts

`reset_from_layout(key, params, layout, agent_pos, agent_dir)` starts an episode on a map you
write; positions are (x = column, y = row), directions 0 east, 1 south, 2 west, 3 north. Agent 0
looks north at agent 1's back with goal 0 beyond it; agent 2 faces a wall that hides everything
behind it (this one spans the view; sight passes the gaps of shorter walls).
Then agent 1 walks over goal 0 (+1: any first goal is right), and agent 0 sees its colour turn
from red toward blue. `prestige_scale` is a traced param, lowered here so one reward shows clearly.""",
    ),
    (
        "code",
        """\
layout = [
    "#############",
    "#.....#.....#",
    "#.....#.....#",
    "#...0.#.....#",
    "#.....#..1..#",
    "#.....#.....#",
    "#.....#.....#",
    "#.....#.....#",
    "#.....#.2...#",
    "#.....#.....#",
    "#...........#",
    "#...........#",
    "#############",
]  # the env's own size (13x13): step's auto-reset swaps in a generated layout of that shape
agent_pos = [[4, 6], [4, 4], [8, 5]]
agent_dir = [3, 3, 2]  # north, north, west
demo_params = params.replace(prestige_scale=1.0)
obs0, state0 = env.reset_from_layout(jax.random.PRNGKey(0), demo_params, layout, agent_pos, agent_dir)
assert env.layout(state0) == layout  # layout() inverts reset_from_layout
show_frame(render(state0, demo_params, tile_px=16), "hand-built layout", size=3)
show_views(obs0, ["agent 0: faces agent 1", "agent 1: faces goal 0", "agent 2: faces a wall"])

obs1, state1, total = obs0, state0, 0.0
for t in range(2):  # agent 1 steps forward twice (onto goal 0, then past it); 6 is a no-op
    obs1, state1, reward1, _, _ = step(jax.random.PRNGKey(t), state1, jnp.array([6, 2, 6]), demo_params)
    total = total + reward1
print("rewards", total, "prestige", state1.prestige)
show_views([obs0[0], obs1[0]], ["agent 0 before", "after agent 1 scored"])""",
    ),
    (
        "md",
        """\
### Two lines of sight

What an agent sees behind walls follows the original code's own rule by default, the one the
paper's agents learnt from; `make(..., occlusion="minigrid")` gives MiniGrid's `process_vis`
instead. Here the same layout under both: agent 1 stands right behind agent 0 (the original
shows the row behind, MiniGrid's rule never does), and agent 2 looks at the wall through the
gap at its bottom, where MiniGrid's sight turns past the gap and the original's runs straight.""",
    ),
    (
        "code",
        """\
pos_b, dir_b = [[4, 6], [4, 7], [9, 9]], [3, 3, 2]  # agent 1 behind agent 0; agent 2 faces the gap
views = {}
for rule in ["original", "minigrid"]:
    env_r, params_r = sociajax.make("GoalCycle-3", occlusion=rule)
    views[rule], _ = env_r.reset_from_layout(jax.random.PRNGKey(0), params_r, layout, pos_b, dir_b)
fig, axes = plt.subplots(2, 3, figsize=(7.2, 5))
for i, rule in enumerate(views):
    for a in range(3):
        axes[i, a].imshow(np.asarray(views[rule][a]), interpolation="nearest")
        axes[i, a].set_title(f"occlusion={rule!r}: agent {a}", fontsize=8)
        axes[i, a].axis("off")
plt.show()
differ = np.asarray(views["original"]) != np.asarray(views["minigrid"])
differ = differ.reshape(3, 7, 3, 7, 3, 3).any(axis=(2, 4, 5))  # [agent, view row, view column]
for a in range(3):
    rows = sorted(set(np.nonzero(differ[a])[0].tolist()))
    print(f"agent {a}: {int(differ[a].sum())} of 49 cells differ, in view rows {rows}")""",
    ),
    (
        "md",
        """\
## 5. A scripted episode

Scripted policies act from the env state inside `jit`: an oracle that knows the goal cycle, an
explorer that learns it by trial, and a random distractor. `record_episode` rolls one episode
in a jitted `lax.scan`, keeping full frames and every agent's view.""",
    ),
    (
        "code",
        """\
policies = [make_policy("oracle"), make_policy("explorer"), make_policy("random")]
names = ["oracle", "explorer", "random"]
start = time.perf_counter()
ep = sociajax.eval.record_episode(env, params, policies, jax.random.PRNGKey(SEED))
print(f"recorded {len(ep['frames'])} frames in {time.perf_counter() - start:.1f}s (compile included)")

gif_path = sociajax.viz.save_gif(
    os.path.join(OUT_DIR, "explore_envs_goal_cycle.gif"),
    sociajax.viz.frames_with_views(ep["frames"], ep["views"]),
    fps=10,
)
print("GIF:", gif_path)
display(Image(filename=gif_path))
for name, total in zip(names, ep["rewards"].sum(0)):
    print(f"{name:9s} return {total:6.1f}")""",
    ),
    (
        "code",
        """\
plt.figure(figsize=(6, 2.2))
for i, name in enumerate(names):
    plt.plot(ep["prestige"][:, i], label=name)
plt.xlabel("step")
plt.ylabel("prestige")
plt.legend(fontsize=8)
plt.title("prestige (the colour others see) over the episode", fontsize=9)
plt.show()""",
    ),
    (
        "md",
        """\
## 6. Timing a batched rollout

Random actions for `NUM_ENVS` envs over `NUM_STEPS` steps inside one jitted `lax.scan`. The
observations are summed into a checksum so XLA cannot skip rendering them. Compile time is
reported apart from the run time of the compiled rollout (after a warm-up call). Agent-steps
count one 21x21 view per agent per step. For proper numbers (larger batches, GPU, other
libraries) see `benchmarks/env_throughput.py`.""",
    ),
    (
        "code",
        """\
def time_rollout(env_id, num_envs=NUM_ENVS, num_steps=NUM_STEPS, seed=SEED):
    env, params = sociajax.make(env_id)
    venv = sociajax.VecEnv(env, num_envs)

    @jax.jit
    def rollout(key):
        _, state = venv.reset(key, params)

        def body(carry, key):
            state, checksum = carry
            key_act, key_step = jax.random.split(key)
            actions = jax.random.randint(key_act, (num_envs, env.n_agents), 0, 3)
            obs, state, reward, done, info = venv.step(key_step, state, actions, params)
            return (state, checksum + obs.astype(jnp.uint32).sum()), None

        (_, checksum), _ = jax.lax.scan(body, (state, jnp.uint32(0)), jax.random.split(key, num_steps))
        return checksum

    start = time.perf_counter()
    compiled = rollout.lower(jax.random.PRNGKey(seed)).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(jax.random.PRNGKey(seed)))  # warm-up
    start = time.perf_counter()
    jax.block_until_ready(compiled(jax.random.PRNGKey(seed + 1)))
    run_s = time.perf_counter() - start
    env_steps = num_envs * num_steps / run_s
    print(
        f"{env_id:12s} {num_envs} envs x {num_steps} steps x {env.n_agents} agents: "
        f"compile {compile_s:.1f}s, run {run_s:.3f}s, {env_steps:,.0f} env-steps/s, "
        f"{env_steps * env.n_agents:,.0f} agent-steps/s"
    )
    return env_steps * env.n_agents


speed = {"GoalCycle-3": time_rollout("GoalCycle-3")}""",
    ),
    (
        "md",
        """\
The transfer worlds, briefly: Four Rooms (17x17) and Maze (19x19, generated in JAX from the
key), each with a learner and an expert by default. A first look at each, then the same
timing.""",
    ),
    (
        "code",
        """\
fig, axes = plt.subplots(1, 2, figsize=(7, 3.5))
for ax, env_id in zip(axes, ["FourRooms", "Maze"]):
    env_t, params_t = sociajax.make(env_id)
    first_frame = jax.jit(lambda key: env_t.render(env_t.reset(key, params_t)[1], params_t, tile_px=8))
    ax.imshow(np.asarray(first_frame(jax.random.PRNGKey(SEED))), interpolation="nearest")
    ax.set_title(f"{env_id}: {env_t.n_agents} agents, max_steps {int(params_t.max_steps)}", fontsize=9)
    ax.axis("off")
plt.show()

for env_id in ["FourRooms", "Maze"]:
    speed[env_id] = time_rollout(env_id)""",
    ),
]


def build() -> nbformat.NotebookNode:
    cells = []
    for index, (kind, source) in enumerate(CELLS):
        cell = new_markdown_cell(source) if kind == "md" else new_code_cell(source)
        cell.id = f"cell-{index:02d}"  # stable ids keep regenerated notebooks diff-free
        cells.append(cell)
    # Papermill-style tag on the parameter cell.
    cells[1].metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def main() -> None:
    nb = build()
    nbformat.validate(nb)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "explore_envs.ipynb")
    with open(path, "w", encoding="utf-8") as handle:
        nbformat.write(nb, handle)
    print(f"wrote {path} ({len(nb.cells)} cells)")


if __name__ == "__main__":
    main()
