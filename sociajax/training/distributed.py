"""Multi-host runs: ``jax.distributed`` set up from the CLI or the cluster's environment,
and the few host-side helpers a run needs when it spans several processes.

One process runs per host (e.g. per GPU node); together they see every device of the job
as ``jax.devices()``. The run axis (conditions x seeds) is sharded over those devices
(:func:`sociajax.training.trainer.mesh_devices`); each run lives wholly on one device, so
the program needs no collectives inside an update and the numbers do not depend on how
many processes share the runs. Process 0 alone writes the run folder's files (metrics,
plot, config, progress); checkpoints are written and read by every process (orbax).

Nothing here is used, and no JAX state is touched, unless the user asks for it with
``--distributed auto`` or ``--distributed.coordinator HOST:PORT`` (the default is off).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import Any, Literal, Optional, Sequence

import numpy as np

Mode = Literal["off", "auto"]
MODES = ("off", "auto")

# Variables read by ``--distributed auto`` besides the cluster detection that
# ``jax.distributed.initialize`` does itself (SLURM, Open MPI, mpi4py, Kubernetes, Cloud TPU);
# JAX reads JAX_COORDINATOR_ADDRESS and JAX_LOCAL_DEVICE_IDS on its own.
ENV_NUM_PROCESSES = "JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "JAX_PROCESS_ID"


@dataclasses.dataclass(frozen=True)
class DistributedConfig:
    """How this process joins a multi-process job. Not part of ``TrainConfig``: the same run
    may be resumed on another cluster layout (the checkpoint is restored to any sharding).

    ``mode`` ``off``: one process (the default); ``auto``: ``jax.distributed.initialize``
    with whatever the fields below leave unset taken from the environment. Giving
    ``coordinator`` implies ``auto`` and then needs ``num_processes`` and ``process_id``
    (or a cluster environment that supplies them)."""

    mode: Mode = "off"
    coordinator: Optional[str] = None  # HOST:PORT of process 0
    num_processes: Optional[int] = None
    process_id: Optional[int] = None
    local_device_ids: Optional[tuple[int, ...]] = None  # this process's devices (e.g. one GPU each)
    timeout_s: int = 300  # how long to wait for every process to join

    @property
    def enabled(self) -> bool:
        return self.mode != "off"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--distributed*`` flags (parsed before anything touches JAX)."""
    parser.add_argument("--distributed", default=None, metavar="{off,auto}")
    parser.add_argument("--distributed.coordinator", "--distributed_coordinator", dest="dist_coordinator")
    parser.add_argument("--distributed.num-processes", "--distributed.num_processes", dest="dist_num_processes")
    parser.add_argument("--distributed.process-id", "--distributed.process_id", dest="dist_process_id")
    parser.add_argument("--distributed.local-device-ids", "--distributed.local_device_ids", dest="dist_local_device_ids")
    parser.add_argument("--distributed.timeout-s", "--distributed.timeout_s", dest="dist_timeout_s")


def _int_field(field: str, value: Any, low: int) -> Optional[int]:
    if value is None:
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValueError(f"{field} must be an integer >= {low}, got {value!r}") from None
    if number < low:
        raise ValueError(f"{field} must be an integer >= {low}, got {value!r}")
    return number


def from_args(args: argparse.Namespace, environ: Optional[dict[str, str]] = None) -> DistributedConfig:
    """The validated :class:`DistributedConfig` of parsed flags; with ``auto``, the process
    count and id fall back to ``JAX_NUM_PROCESSES`` / ``JAX_PROCESS_ID`` when set."""
    environ = dict(os.environ if environ is None else environ)
    mode = args.distributed
    if mode is not None and mode not in MODES:
        raise ValueError(f"--distributed must be one of {MODES}, got {mode!r}")
    explicit = any(
        getattr(args, name) is not None
        for name in ("dist_coordinator", "dist_num_processes", "dist_process_id", "dist_local_device_ids")
    )
    if mode == "off" and explicit:
        raise ValueError("--distributed off conflicts with the --distributed.* flags given; drop one of them")
    if mode is None:
        mode = "auto" if explicit else "off"
    if mode == "off":
        return DistributedConfig()
    coordinator = args.dist_coordinator
    if coordinator is not None:
        host, _, port = coordinator.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"--distributed.coordinator must be HOST:PORT, got {coordinator!r}")
    num_processes = _int_field("--distributed.num-processes", args.dist_num_processes, 1)
    if num_processes is None:
        num_processes = _int_field(ENV_NUM_PROCESSES, environ.get(ENV_NUM_PROCESSES), 1)
    process_id = _int_field("--distributed.process-id", args.dist_process_id, 0)
    if process_id is None:
        process_id = _int_field(ENV_PROCESS_ID, environ.get(ENV_PROCESS_ID), 0)
    if coordinator is not None and (num_processes is None or process_id is None) and not _cluster_detected(environ):
        missing = "--distributed.num-processes" if num_processes is None else "--distributed.process-id"
        raise ValueError(f"--distributed.coordinator={coordinator!r} needs {missing} too (no cluster environment found)")
    if num_processes is not None and process_id is not None and process_id >= num_processes:
        raise ValueError(
            f"--distributed.process-id must be below --distributed.num-processes={num_processes}, got {process_id}"
        )
    local_ids = None
    if args.dist_local_device_ids is not None:
        text = args.dist_local_device_ids
        try:
            local_ids = tuple(int(part) for part in text.split(","))
        except ValueError:
            raise ValueError(f"--distributed.local-device-ids must be comma-separated integers, got {text!r}") from None
        if not local_ids or min(local_ids) < 0:
            raise ValueError(f"--distributed.local-device-ids must be non-negative integers, got {text!r}")
    timeout = _int_field("--distributed.timeout-s", args.dist_timeout_s, 1)
    return DistributedConfig(
        mode="auto", coordinator=coordinator, num_processes=num_processes, process_id=process_id,
        local_device_ids=local_ids, timeout_s=300 if timeout is None else timeout,
    )


def _cluster_detected(environ: dict[str, str]) -> bool:
    """A scheduler whose variables ``jax.distributed`` reads (SLURM, Open MPI)."""
    return "SLURM_JOB_ID" in environ or "OMPI_MCA_orte_hnp_uri" in environ


def initialize(config: DistributedConfig) -> None:
    """Join the job (a no-op when ``config`` is off). Must run before any other JAX call:
    the backends, and so the device list, are fixed at their first use."""
    if not config.enabled:
        return
    import jax

    # CPU processes need a collectives backend to run one program together (older jaxlibs
    # default to none); GPU and TPU backends bring their own, so this changes nothing there.
    try:
        if jax.config.jax_cpu_collectives_implementation in (None, "none"):
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
    except AttributeError:
        pass
    try:
        jax.distributed.initialize(
            coordinator_address=config.coordinator,
            num_processes=config.num_processes,
            process_id=config.process_id,
            local_device_ids=list(config.local_device_ids) if config.local_device_ids else None,
            initialization_timeout=config.timeout_s,
        )
    except (ValueError, RuntimeError) as err:
        raise RuntimeError(
            f"jax.distributed.initialize failed (--distributed.coordinator={config.coordinator!r}, "
            f"--distributed.num-processes={config.num_processes!r}, --distributed.process-id={config.process_id!r}; "
            f"unset ones come from the environment): {err}"
        ) from err


# ---------------------------------------------------------------- host-side helpers
def process_count() -> int:
    import jax

    return jax.process_count()


def is_primary() -> bool:
    """Whether this process writes the run folder's files (process 0; always true alone)."""
    import jax

    return jax.process_index() == 0


def _local_rows(leaves: list[Any]) -> Optional[tuple[list[tuple[int, int]], list[np.ndarray]]]:
    """This process's rows of arrays split along their first axis only, each row held by
    one process: the row blocks ``(start, stop)`` it holds (the same for every leaf) and
    each leaf's rows [r, ...], read from its own shards without a collective. None when a
    leaf is laid out otherwise; the layouts are global, so every process decides alike."""
    import jax

    layout: Optional[dict[tuple[int, int], int]] = None
    local = []
    for x in leaves:
        if not isinstance(x, jax.Array) or x.ndim < 1 or x.shape[0] != leaves[0].shape[0]:
            return None
        owner: dict[tuple[int, int], int] = {}  # row block -> the one process holding it
        for device, index in x.sharding.devices_indices_map(x.shape).items():
            rows, *rest = index
            if any(part != slice(None) for part in rest):
                return None
            block = rows.indices(x.shape[0])[:2]
            if owner.setdefault(block, device.process_index) != device.process_index:
                return None  # replicated across processes: let process_allgather sort it out
        blocks = sorted(owner)
        if any(a[1] != b[0] for a, b in zip(blocks, blocks[1:])) or blocks[0][0] != 0 or blocks[-1][1] != x.shape[0]:
            return None  # blocks that overlap or leave gaps
        if layout is None:
            layout = owner
        elif owner != layout:
            return None
        shards = {shard.index[0].indices(x.shape[0])[:2]: shard.data for shard in x.addressable_shards}
        local.append(np.concatenate([np.asarray(shards[block]) for block in sorted(shards)]))
    if layout is None:
        return None
    return sorted(block for block, process in layout.items() if process == jax.process_index()), local


def to_host(tree: Any) -> Any:
    """NumPy copies of a pytree of (possibly multi-process) arrays, whole on every process
    (with one process, ``device_get``): :func:`gather_chunk` without a stop flag."""
    return gather_chunk(tree, False)[0]


def gather_chunk(tree: Any, flag: Any) -> tuple[Any, bool]:
    """A chunk's metrics whole on every process, and whether ``flag`` (a stop signal) is
    true on any process, in one collective. ``flag`` is read once the metrics are on the
    host (after the chunk has run), so a signal that arrives during the chunk counts.

    With several processes, arrays split along their first axis (the run axis) are read
    from each process's own shards and packed as bytes into one host array, each row with
    its row number and this process's flag; one all-gather of that array exchanges them
    (about a millisecond on CPU, against 25-30 ms for a jitted gather to a replicated
    sharding). Anything else goes through ``process_allgather`` leaf by leaf."""
    import jax
    from jax.experimental import multihost_utils

    if jax.process_count() == 1:
        host = jax.device_get(tree)  # waits for the chunk, so ``flag`` is read after it
        return host, bool(flag)
    leaves, treedef = jax.tree.flatten(tree)
    found = _local_rows(leaves)
    if found is None:
        host = jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))
        return host, any_process(bool(flag))
    blocks, local = found
    row_ids = np.concatenate([np.arange(begin, stop, dtype=np.int32) for begin, stop in blocks])
    header = np.stack([row_ids, np.full_like(row_ids, int(bool(flag)))], axis=1)  # int32 [r, 2]
    columns = [header] + [x.reshape(len(row_ids), -1) for x in local]
    packed = np.concatenate([np.ascontiguousarray(c).view(np.uint8) for c in columns], axis=1)
    gathered = np.asarray(multihost_utils.process_allgather(packed, tiled=True))
    header = np.ascontiguousarray(gathered[:, :8]).view(np.int32)
    rows, total = header[:, 0], leaves[0].shape[0]
    if len(rows) != total or not np.array_equal(np.sort(rows), np.arange(total)):
        raise RuntimeError(f"gather_chunk: the processes' rows {sorted(rows.tolist())} are not rows 0..{total - 1}")
    order = np.argsort(rows)
    out, offset = [], 8
    for x in leaves:
        width = int(np.prod(x.shape[1:], dtype=np.int64)) * x.dtype.itemsize
        out.append(np.ascontiguousarray(gathered[order, offset : offset + width]).view(x.dtype).reshape(x.shape))
        offset += width
    return jax.tree.unflatten(treedef, out), bool(np.any(header[:, 1]))


def any_process(flag: bool) -> bool:
    """True on every process when ``flag`` is true on any (e.g. a signal some process got):
    processes must agree before a collective step such as a checkpoint."""
    import jax

    if jax.process_count() == 1:
        return bool(flag)
    from jax.experimental import multihost_utils

    flags = multihost_utils.process_allgather(np.asarray([int(bool(flag))], np.int32), tiled=True)
    return bool(np.any(flags))


def barrier(name: str) -> None:
    """Wait until every process gets here (no-op alone)."""
    import jax

    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def global_array(value: Any, sharding: Any) -> Any:
    """A global array of ``sharding`` from a value every process holds whole (same numbers
    on each): each process puts only the shards of its own devices."""
    import jax

    host = np.asarray(value)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def describe() -> str:
    """One line: processes, this process's index, local and global device counts."""
    import jax

    return (
        f"process {jax.process_index()} of {jax.process_count()}, {jax.local_device_count()} local of "
        f"{jax.device_count()} devices ({jax.devices()[0].platform})"
    )


def parse(argv: Sequence[str]) -> tuple[DistributedConfig, list[str]]:
    """(config, the remaining args) of a command line."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    add_arguments(parser)
    known, rest = parser.parse_known_args(list(argv))
    return from_args(known), rest
