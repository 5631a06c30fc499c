"""Execute ``examples/explore_envs.ipynb`` end to end and check what it produces; the committed
notebook is the source, kept valid and output-free."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
ipykernel_kernelspec = pytest.importorskip("ipykernel.kernelspec")
iio = pytest.importorskip("imageio.v3")

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "examples" / "explore_envs.ipynb"
PROBE = "import sys, json; print('KERNEL_PREFIX=' + json.dumps(sys.prefix))"


def _text_outputs(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif output.get("output_type") in ("execute_result", "display_data"):
            parts.append(output.get("data", {}).get("text/plain", "") + "\n")
    return "".join(parts)


def _execute(tmp: Path) -> tuple[nbformat.NotebookNode, Path]:
    """Run the notebook in a fresh kernel (cwd ``examples/``, outputs under ``tmp``), with
    a probe cell appended that reports the kernel's ``sys.prefix``."""
    out_dir = tmp / "outputs"
    # A kernelspec for this interpreter, first on JUPYTER_PATH, so the kernel is the Python
    # running the tests (the one with this sociajax installed) whatever kernels the user has.
    prefix = tmp / "kernel"
    ipykernel_kernelspec.install(kernel_name="python3", prefix=str(prefix))
    jupyter_path = [str(prefix / "share" / "jupyter")]
    jupyter_path += [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    patched = pytest.MonkeyPatch()
    patched.setenv("JUPYTER_PATH", os.pathsep.join(jupyter_path))
    patched.setenv("SOCIAJAX_NB_OUT", str(out_dir))
    patched.setenv("JAX_PLATFORMS", os.environ.get("JAX_PLATFORMS", "cpu"))
    try:
        run = nbformat.read(NOTEBOOK, as_version=4)
        run.cells.append(nbformat.v4.new_code_cell(PROBE))
        nbclient.NotebookClient(
            run,
            kernel_name="python3",
            timeout=300,  # per cell
            resources={"metadata": {"path": str(NOTEBOOK.parent)}},
        ).execute()
    finally:
        patched.undo()
    return run, out_dir


def test_committed_notebook_is_stripped() -> None:
    """Valid, with no outputs and no execution counts, so a diff shows only what was edited.
    After running it in Jupyter, clear it before committing: "Clear All Outputs" and save."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, "notebook has no code cells"
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, (
            "commit the notebook without outputs: jupyter nbconvert --clear-output --inplace examples/explore_envs.ipynb"
        )


def test_notebook_executes(tmp_path: Path) -> None:
    """One test for everything the executed notebook shows, so ``pytest -n`` runs it once."""
    run, out_dir = _execute(tmp_path)
    # No cell errored, and the kernel was this interpreter (sociajax from this checkout).
    for cell in run.cells:
        if cell.cell_type == "code":
            assert not any(o.get("output_type") == "error" for o in cell.outputs), cell.source
    match = re.search(r"KERNEL_PREFIX=(.*)", _text_outputs(run.cells[-1]))
    assert match, "probe cell printed nothing"
    assert json.loads(match.group(1)) == sys.prefix

    # The scripted episode's GIF: one Goal Cycle episode (250 steps) plus its first frame,
    # the 13x13 full frame (16 px tiles) beside the 3 agents' views, and frames that change.
    gif = out_dir / "explore_envs_goal_cycle.gif"
    assert gif.is_file(), f"no GIF in {out_dir}: {sorted(os.listdir(out_dir)) if out_dir.exists() else 'missing'}"
    frames = iio.imread(gif, index=None)
    assert frames.ndim == 4 and frames.shape[0] == 251, frames.shape
    assert frames.shape[1] >= 13 * 16 and frames.shape[2] > 13 * 16, frames.shape
    assert len({frame.tobytes() for frame in frames[::25]}) > 1, "GIF frames do not change"
    outputs = [o for cell in run.cells for o in cell.get("outputs", [])]
    assert any("image/gif" in o.get("data", {}) for o in outputs), "the GIF was not displayed inline"
    figures = sum("image/png" in o.get("data", {}) for o in outputs)
    assert figures >= 7, f"expected the notebook's matplotlib figures, got {figures}"

    # Printed returns (the oracle expert scores, the random distractor does worse) and speeds.
    text = "\n".join(_text_outputs(cell) for cell in run.cells if cell.cell_type == "code")
    returns = dict(re.findall(r"^(oracle|explorer|random)\s+return\s+(-?[\d.]+)", text, re.M))
    assert set(returns) == {"oracle", "explorer", "random"}, text[-2000:]
    assert float(returns["oracle"]) > 10.0 and float(returns["oracle"]) > float(returns["random"]), returns
    speeds = {
        env_id: float(value.replace(",", ""))
        for env_id, value in re.findall(r"^(\S+)\s.*?([\d,]+) agent-steps/s", text, re.M)
    }
    assert set(speeds) == {"GoalCycle-3", "FourRooms", "Maze"}, speeds
    assert all(np.isfinite(v) and v > 0 for v in speeds.values()), speeds
