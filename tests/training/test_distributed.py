"""Multi-host runs: the flags and their errors, which devices the run axis uses, and two
local CPU processes (two host devices each) doing what one process with four devices does."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import textwrap
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

from sociajax.training import distributed
from sociajax.training.logging import COLUMNS, read_metrics
from sociajax.training.trainer import mesh_devices

Device = namedtuple("Device", "id process_index")
ROOT = Path(__file__).resolve().parents[2]


def _devices(processes: int, per_process: int) -> list[Device]:
    return [Device(p * 100 + i, p) for p in range(processes) for i in range(per_process)]


def test_mesh_devices_alone_takes_the_first_gcd_devices() -> None:
    devices = _devices(1, 4)
    assert mesh_devices(4, devices) == devices
    assert mesh_devices(6, devices) == devices[:2]
    assert mesh_devices(3, devices) == devices[:1]


def test_mesh_devices_take_as_many_from_every_process() -> None:
    devices = _devices(2, 2)
    assert mesh_devices(4, devices) == devices
    assert mesh_devices(8, devices) == devices
    assert [d.process_index for d in mesh_devices(2, devices)] == [0, 1]  # one each, not two of process 0
    assert [d.process_index for d in mesh_devices(6, _devices(2, 4))] == [0, 1]  # 3 runs each: gcd(3, 4) = 1
    with pytest.raises(ValueError, match="num_runs .* = 3 .* process count 2"):
        mesh_devices(3, devices)


def _parse(argv: list[str], environ: dict[str, str] | None = None) -> distributed.DistributedConfig:
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    distributed.add_arguments(parser)
    known, rest = parser.parse_known_args(argv)
    assert rest == []
    return distributed.from_args(known, environ or {})


def test_distributed_is_off_unless_asked() -> None:
    assert not _parse([]).enabled
    assert not _parse([], {"SLURM_JOB_ID": "1", "JAX_NUM_PROCESSES": "2"}).enabled
    config, rest = distributed.parse(["--preset", "smoke", "--num-seeds", "2"])
    assert not config.enabled and rest == ["--preset", "smoke", "--num-seeds", "2"]


def test_distributed_flags_and_environment() -> None:
    config = _parse(["--distributed.coordinator", "10.0.0.1:1234", "--distributed.num-processes", "4",
                     "--distributed.process-id", "3", "--distributed.local-device-ids", "0,1"])
    assert config == distributed.DistributedConfig("auto", "10.0.0.1:1234", 4, 3, (0, 1))
    config = _parse(["--distributed", "auto"], {"JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "1"})
    assert (config.mode, config.coordinator, config.num_processes, config.process_id) == ("auto", None, 2, 1)
    config = _parse(["--distributed=auto"])  # all from the cluster's own variables (SLURM, ...)
    assert config.enabled and config.num_processes is None
    config = _parse(["--distributed.coordinator", "h:1"], {"SLURM_JOB_ID": "7"})  # SLURM gives the rest
    assert config.enabled


@pytest.mark.parametrize(
    "argv, environ, message",
    [
        (["--distributed", "on"], {}, r"--distributed must be one of .* got 'on'"),
        (["--distributed", "off", "--distributed.process-id", "0"], {}, "--distributed off conflicts"),
        (["--distributed.coordinator", "nohost", "--distributed.num-processes", "2", "--distributed.process-id", "0"],
         {}, "--distributed.coordinator must be HOST:PORT, got 'nohost'"),
        (["--distributed.coordinator", "h:1", "--distributed.num-processes", "two", "--distributed.process-id", "0"],
         {}, "--distributed.num-processes must be an integer >= 1, got 'two'"),
        (["--distributed.coordinator", "h:1", "--distributed.num-processes", "2", "--distributed.process-id", "2"],
         {}, "--distributed.process-id must be below --distributed.num-processes=2, got 2"),
        (["--distributed.coordinator", "h:1", "--distributed.num-processes", "2"], {},
         "needs --distributed.process-id"),
        (["--distributed", "auto"], {"JAX_PROCESS_ID": "-1"}, "JAX_PROCESS_ID must be an integer >= 0, got '-1'"),
        (["--distributed", "auto", "--distributed.local-device-ids", "0,a"], {},
         "--distributed.local-device-ids must be comma-separated integers, got '0,a'"),
    ],
)
def test_bad_distributed_input_names_the_field_and_value(argv, environ, message) -> None:
    with pytest.raises(ValueError, match=message):
        _parse(argv, environ)


def test_cli_reports_bad_distributed_flags() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sociajax.train", "--distributed", "maybe"], capture_output=True, text=True, timeout=120,
        cwd=ROOT,
    )
    assert result.returncode != 0 and "--distributed must be one of" in result.stderr


def test_importing_sociajax_starts_no_jax_backend() -> None:
    """``jax.distributed.initialize`` must come before any backend starts; the CLI imports
    the package first, so importing it must not touch a device."""
    script = (
        "import jax._src.xla_bridge as xb, sociajax, sociajax.train, sociajax.training.run, sociajax.evaluate;"
        "assert not xb._backends, xb._backends; print('OK')"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-3000:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(devices: int) -> dict[str, str]:
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    return dict(
        os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu", PYTHONPATH=path
    )


def _two_processes(args_of, timeout: float, logs: Path) -> list[subprocess.CompletedProcess]:
    """Run ``args_of(process_id, port)`` as two local processes of two CPU devices each
    (output to files: a full pipe would stall one process and the other at its barrier)."""
    port = _free_port()
    logs.mkdir(parents=True, exist_ok=True)
    files = [(open(logs / f"{i}.out", "w+"), open(logs / f"{i}.err", "w+")) for i in range(2)]
    procs = [
        subprocess.Popen([sys.executable, *args_of(i, port)], env=_env(2), stdout=out, stderr=err, text=True, cwd=ROOT)
        for i, (out, err) in enumerate(files)
    ]
    results = []
    try:
        for proc, (out, err) in zip(procs, files):
            proc.wait(timeout=timeout)
            out.seek(0), err.seek(0)
            results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read()))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for out, err in files:
            out.close(), err.close()
    return results


HELPERS = textwrap.dedent(
    """
    import sys, jax, numpy as np
    from sociajax.training import distributed
    from sociajax.training.checkpoint import Checkpointer
    from jax.sharding import Mesh, NamedSharding, PartitionSpec
    cluster, _ = distributed.parse(sys.argv[3:])
    distributed.initialize(cluster)
    run_dir, pid = sys.argv[1], int(sys.argv[2])
    assert (jax.process_count(), jax.device_count(), jax.local_device_count()) == (2, 4, 2)
    sharding = NamedSharding(Mesh(np.asarray(jax.devices()), ("run",)), PartitionSpec("run"))
    tree = {"w": np.arange(12, dtype=np.float32).reshape(4, 3), "k": np.arange(4, dtype=np.uint32),
            "b": np.arange(16).reshape(4, 2, 2) % 3 == 0, "h": np.arange(-4, 4, 2, dtype=np.int8)}
    state = jax.tree.map(lambda x: distributed.global_array(x, sharding), tree)
    assert all(len(x.addressable_shards) == 2 for x in jax.tree.leaves(state))
    doubled = jax.jit(lambda t: jax.tree.map(lambda x: x ^ True if x.dtype == bool else x * 2, t),
                      out_shardings=sharding)(state)
    expected = {k: tree[k] ^ True if k == "b" else tree[k] * 2 for k in tree}
    host = distributed.to_host(doubled)
    assert all(host[k].dtype == expected[k].dtype and np.array_equal(host[k], expected[k]) for k in tree), host
    # metrics and a stop flag travel together; one process's flag stops both
    host, stopping = distributed.gather_chunk(doubled, pid == 1)
    assert stopping and all(np.array_equal(host[k], expected[k]) for k in tree)
    assert not distributed.gather_chunk(doubled, False)[1]
    # leaves not split along runs (a replicated scalar) take the leaf-by-leaf path
    mixed = dict(doubled, total=jax.jit(lambda x: x.sum())(doubled["w"]))
    host, stopping = distributed.gather_chunk(mixed, pid == 0)
    assert stopping and host["total"] == expected["w"].sum() and np.array_equal(host["k"], expected["k"])
    assert distributed.any_process(pid == 1) and not distributed.any_process(False)
    expected = {k: expected[k] for k in ("w", "k")}
    doubled = {k: doubled[k] for k in expected}
    checkpointer = Checkpointer(run_dir)
    checkpointer.save(3, doubled, {"update": 3})
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), doubled)
    restored, meta = checkpointer.restore_as(abstract, checkpointer.latest())
    checkpointer.close()
    assert meta == {"update": 3} and restored["w"].sharding == sharding
    assert all(np.array_equal(distributed.to_host(restored)[k], expected[k]) for k in expected)
    distributed.barrier("done")
    print("OK", pid)
    """
)


def test_two_processes_share_global_arrays_gathers_signals_and_checkpoints(tmp_path) -> None:
    """The pieces a multi-host run uses, with a trivial program (seconds, not a training
    compile): global arrays from whole host values, all-gathers, agreeing on a stop, and
    orbax saving and restoring sharded state with both processes taking part."""
    results = _two_processes(
        lambda i, port: ["-c", HELPERS, str(tmp_path / "run"), str(i), "--distributed.coordinator",
                         f"127.0.0.1:{port}", "--distributed.num-processes", "2", "--distributed.process-id", str(i)],
        timeout=240, logs=tmp_path / "logs",
    )
    for i, result in enumerate(results):
        assert result.returncode == 0 and f"OK {i}" in result.stdout, result.stderr[-3000:]
    assert (tmp_path / "run" / "checkpoints" / "3").is_dir()


TINY = ["--env.max-steps", "16", "--ppo.num-envs", "2", "--ppo.minibatch-segments", "2", "--num-seeds", "4",
        "--checkpoint-every", "1", "--progress"]
FLOATS = ("return", "loss", "policy_loss", "value_loss", "entropy", "aux_loss", "bc_loss", "approx_kl_final")
EXACT = [c for c in COLUMNS if c not in ("sps", "wall_s") + FLOATS]


def _as_float(value: str) -> float:
    return float("nan") if value == "" else float(value)


@pytest.mark.slow  # two trainer compiles side by side: ~5 min on 2 loaded cores
def test_two_processes_train_like_one_and_resume_exactly(tmp_path) -> None:
    """4 seeds over 2 processes x 2 CPU devices, 2 updates then resumed to 4, give the
    metrics of one process with 4 devices training 4 updates; process 0 alone writes."""
    one = tmp_path / "one"
    single = subprocess.run(
        [sys.executable, "-m", "sociajax.train", "--preset", "smoke", "--run-dir", str(one),
         "--total-env-steps", str(4 * 2 * 16), *TINY],
        env=_env(4), capture_output=True, text=True, timeout=900, cwd=ROOT,
    )
    assert single.returncode == 0, single.stderr[-3000:]

    many = tmp_path / "many"

    def args(steps: int, resume: bool):
        return lambda i, port: [
            "-m", "sociajax.train", "--preset", "smoke", "--run-dir", str(many), "--total-env-steps", str(steps),
            *TINY, *(["--resume"] if resume else []), "--distributed.coordinator", f"127.0.0.1:{port}",
            "--distributed.num-processes", "2", "--distributed.process-id", str(i),
        ]

    for steps, resume in ((2 * 2 * 16, False), (4 * 2 * 16, True)):
        first, second = _two_processes(args(steps, resume), timeout=900, logs=tmp_path / f"logs-{steps}")
        for result in (first, second):
            assert result.returncode == 0, result.stderr[-3000:]
        assert "return over the last 10% of updates" in first.stdout and "return over" not in second.stdout
        assert "update/s" in first.stderr and "update/s" not in second.stderr  # progress: process 0 only
        assert "process 1 of 2, 2 local of 4 devices" in second.stderr

    assert sorted(p.name for p in many.iterdir()) == sorted(p.name for p in one.iterdir())
    assert sorted(int(p.name) for p in (many / "checkpoints").iterdir() if p.name.isdigit())[-1] == 4
    rows_one, rows_many = read_metrics(one / "metrics.csv"), read_metrics(many / "metrics.csv")
    assert len(rows_one) == len(rows_many) == 4 * 4 * 3  # updates x seeds x agents: no row written twice
    assert [[r[c] for c in EXACT] for r in rows_one] == [[r[c] for c in EXACT] for r in rows_many]
    for name in FLOATS:
        np.testing.assert_allclose(
            [_as_float(r[name]) for r in rows_many], [_as_float(r[name]) for r in rows_one], rtol=1e-4, atol=1e-6,
            err_msg=name,
        )
