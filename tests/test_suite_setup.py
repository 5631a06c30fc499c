"""The test session's own setup: what keeps the default suite within its time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROBE = '''
import pytest

@pytest.mark.xdist_group("probe")
def test_grouped(request):
    assert request.node.nodeid.endswith("@probe"), request.node.nodeid
'''


def test_xdist_groups_reach_the_scheduler(tmp_path: Path) -> None:
    """Tests that share an expensive module fixture (a tiny Figure 4 run, tiny experts) are
    marked ``xdist_group`` so that one worker builds it once. pytest-xdist applies a group by
    tagging the node id; when a pytest release stops that from working (pytest 9.2 with
    pytest-xdist 3.8 did), the groups split silently and every worker rebuilds the fixtures.
    Checked in a pytest of its own, run as the suite runs (``-n 2 --dist loadgroup``)."""
    (tmp_path / "test_probe.py").write_text(PROBE)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), str(tmp_path / "test_probe.py")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
