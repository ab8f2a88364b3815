#!/usr/bin/env python3
"""Runs every notebook of docs/notebooks headless, as the tests do (tools/test).

    python docs/notebooks/run_notebooks.py [NAME.ipynb ...]

Each notebook runs top to bottom in a fresh kernel of *this* interpreter (so in the venv that
runs this script, with its gndet), with the repository root as working directory (relative
config paths resolve) and MPLBACKEND=Agg. The notebooks assert the numbers they show, so a
notebook passes when every cell runs. Prints one line per notebook:

    notebook groupnorm_and_ws.ipynb: passed (4.1s)
    notebook mask_rcnn_step.ipynb: FAILED: AssertionError: ...

and exits 1 when any failed. Outputs are not written back: the committed notebooks stay clean.
"""
from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
TIMEOUT_S = 600
# The kernel's own warnings (e.g. "running over TCP without encryption", local and harmless here)
# would only clutter the test log; a cell's errors come back through the notebook regardless.
QUIET_KERNEL = ["--log-level=ERROR"]


def pin_kernel(tmp: Path) -> None:
    """Makes the kernel named "python3" this interpreter: a kernel spec in a folder of our own,
    put first on JUPYTER_PATH (which Jupyter searches before the user's and the system's specs,
    so a python3 spec elsewhere cannot send the notebooks to another Python)."""
    spec = tmp / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (gndet notebooks)",
        "language": "python",
    }))
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(tmp), os.environ.get("JUPYTER_PATH")]))


def cell_error(cell) -> str:
    """What went wrong in a cell: 'AssertionError: <message>', the line that raised (an assert
    without a message says nothing else) and the cell's first line, so the step can be found."""
    err = next(o for o in cell.outputs if o.get("output_type") == "error")
    ansi = re.compile(r"\x1b\[[0-9;]*m")
    line = ""
    for frame in err.get("traceback", []):  # IPython marks the raising line of each frame with --->
        for text in ansi.sub("", frame).splitlines():
            marked = re.match(r"\s*-+>\s*\d*\s?(.*)", text)
            if marked:
                line = marked.group(1).strip()
    first = cell.source.strip().splitlines()[0][:80] if cell.source.strip() else ""
    where = f" at {line!r}" if line else ""
    return f"{err.get('ename', '?')}: {err.get('evalue', '')}{where} (cell starting {first!r})"


def run(path: Path) -> tuple[bool, str, float]:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=TIMEOUT_S, extra_arguments=QUIET_KERNEL,
                            resources={"metadata": {"path": str(REPO)}})
    t0 = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as e:
        failed = next((c for c in nb.cells if c.cell_type == "code" and
                       any(o.get("output_type") == "error" for o in c.get("outputs", []))), None)
        why = cell_error(failed) if failed is not None else f"{e.ename}: {e.evalue}"
        return False, why, time.perf_counter() - t0
    except Exception as e:  # the kernel died, timed out, could not start
        return False, f"{type(e).__name__}: {e}", time.perf_counter() - t0
    return True, "", time.perf_counter() - t0


def check_kernel_python() -> str:
    """'' when the python3 kernel runs this very interpreter in this very environment (a venv's
    python is often a link to the system's, so the prefix tells them apart), else why not."""
    import nbformat
    from nbclient import NotebookClient

    probe = "import sys; print(sys.prefix); print(sys.executable)"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(probe)])
    try:
        NotebookClient(nb, kernel_name="python3", timeout=120, extra_arguments=QUIET_KERNEL).execute()
    except Exception as e:
        return f"the python3 kernel does not start: {type(e).__name__}: {e}"
    lines = "".join(o.get("text", "") for o in nb.cells[0].outputs).split("\n")
    prefix, executable = (lines + ["", ""])[:2]
    if os.path.realpath(prefix) != os.path.realpath(sys.prefix):
        return f"the python3 kernel runs {executable!r} in {prefix!r}, not {sys.executable!r} in {sys.prefix!r}"
    return ""


def main(argv: list[str]) -> int:
    os.environ["MPLBACKEND"] = "Agg"
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # a debugger warning on frozen modules
    names = argv[1:]
    paths = [HERE / n for n in names] if names else sorted(HERE.glob("*.ipynb"))
    if not paths:
        print("no notebooks in", HERE)
        return 1
    with tempfile.TemporaryDirectory(prefix="gndet-kernels-") as tmp:
        pin_kernel(Path(tmp))
        why = check_kernel_python()
        if why:
            print(f"notebooks: FAILED: {why}")
            return 1
        failed = 0
        for path in paths:
            ok, error, seconds = run(path)
            if ok:
                print(f"notebook {path.name}: passed ({seconds:.1f}s)", flush=True)
            else:
                failed += 1
                print(f"notebook {path.name}: FAILED: {error}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
