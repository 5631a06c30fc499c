"""What each config field is, declared once where the field is declared.

Every field of the config dataclasses (``TrainConfig``, ``EnvConfig``, ``AgentConfig``,
``PPOConfig``, ``NetworkConfig``) is one of three kinds:

* **static** (the default, no marker): sets shapes or code paths of the compiled program, so
  changing it compiles another program (world shape, roles, PPO schedule integers);
* **data** (:func:`data`): read by the compiled program from arrays, so it may differ between
  the conditions of one program (learning rates, coefficients, schedules);
* **host** (:func:`host`): never reaches the program: run length, seeds, logging, the run
  folder; ``resumable`` ones may change when a run is resumed.

Everything that needs the split (the fields a condition may set, the config a program is
keyed by, what ``--resume`` may change) is derived from these markers by
:mod:`sociajax.training.config`, so a new field is declared in one place.
"""

from __future__ import annotations

import dataclasses
from typing import Any

KINDS = ("static", "data", "host")


def data(default: Any, doc: str) -> Any:
    """A data field: may differ between the conditions of one compiled program. ``doc`` is
    its one line in the CLI's ``--help`` (tyro reads ``help``) and in ``DATA_FIELDS``."""
    return dataclasses.field(default=default, metadata={"kind": "data", "doc": doc, "help": doc})


def host(default: Any, *, resumable: bool, doc: str) -> Any:
    """A host-only field: the compiled program never sees it. ``resumable``: it may change
    when a run is continued with ``--resume``. ``doc``: its line in ``--help``."""
    return dataclasses.field(default=default, metadata={"kind": "host", "resumable": resumable, "help": doc})


def kind(field: dataclasses.Field) -> str:
    """``"static"``, ``"data"`` or ``"host"``."""
    return field.metadata.get("kind", "static")


def of_kind(cls: type, wanted: str) -> tuple[dataclasses.Field, ...]:
    """The fields of dataclass ``cls`` of kind ``wanted``, in declaration order."""
    if wanted not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {wanted!r}")
    return tuple(f for f in dataclasses.fields(cls) if kind(f) == wanted)


def with_defaults(instance: Any, wanted: str) -> Any:
    """``instance`` with every field of kind ``wanted`` at its default."""
    return dataclasses.replace(instance, **{f.name: f.default for f in of_kind(type(instance), wanted)})
