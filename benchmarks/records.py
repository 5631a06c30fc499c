"""Writing a benchmark's JSON record (the numbers behind docs/benchmarks.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional


def write_record(path: Optional[Path], record: Any) -> None:
    """Write ``record`` as indented JSON to ``path`` (its folder made) and say so; nothing
    when ``path`` is None (the script's ``--out`` was not given)."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2))
    print(f"wrote {path}")
