"""The test session's own setup: what keeps the default suite within its time."""

from __future__ import annotations

import pytest


@pytest.mark.xdist_group("suite_setup_probe")
def test_xdist_groups_reach_the_scheduler(request: pytest.FixtureRequest) -> None:
    """Tests that share an expensive module fixture (a tiny Figure 4 run, tiny experts) are
    marked ``xdist_group`` so that one worker builds it once. pytest-xdist applies a group by
    tagging the node id; when a pytest release stops that from working (pytest 9.2 with
    pytest-xdist 3.8 did), the groups split silently and every worker rebuilds the fixtures."""
    if not hasattr(request.config, "workerinput") or not request.config.getvalue("loadgroup"):
        pytest.skip("only meaningful under -n N with --dist loadgroup (the default addopts)")
    assert request.node.nodeid.endswith("@suite_setup_probe"), request.node.nodeid
