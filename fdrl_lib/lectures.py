"""Run the lecture notebooks and save them as a learner should first meet them.

    python -m fdrl_lib.lectures                      # every lectures/*.ipynb, full mode
    python -m fdrl_lib.lectures lectures/02_dqn.ipynb --fast

A saved notebook must open in JupyterLab unmodified and without broken outputs, so after the run:

* its ``kernelspec`` and ``language_info`` are the ones the kernel reports (JupyterLab rewrites
  both when it connects, and marks the notebook modified when they differ);
* live widget views are dropped from the outputs, keeping their text fallback (a one-line "run
  this cell" note) under the static picture: a widget view saved without its kernel shows "Error
  displaying widget: model not found";
* run-time metadata (papermill's, execution timings, saved widget state) is removed.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from fdrl_lib.widgets import STATIC_NOTE

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
RUNTIME_METADATA = ("papermill", "widgets")
RUNTIME_CELL_METADATA = ("papermill", "execution", "ExecuteTime", "collapsed", "scrolled")


def clean_outputs(nb: Any) -> Any:
    """Drop widget views (keeping any text fallback) and run-time metadata, in place."""
    for key in RUNTIME_METADATA:
        nb.metadata.pop(key, None)
    for cell in nb.cells:
        for key in RUNTIME_CELL_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.outputs:
            data = output.get("data")
            if data is not None and WIDGET_VIEW in data:
                del data[WIDGET_VIEW]
                plain = "".join(data.get("text/plain", ""))
                if set(data) <= {"text/plain"} and plain != STATIC_NOTE:
                    # not our "run this cell" note: a progress bar ("dqn: 0%|...", frozen at its
                    # first frame) or a widget's "HBox(children=...)" says nothing true
                    continue
            kept.append(output)
        cell.outputs = kept
    return nb


def kernel_metadata(kernel_name: str = "python3") -> tuple[dict[str, str], dict[str, Any]]:
    """The ``kernelspec`` and ``language_info`` that JupyterLab will write for this kernel."""
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name=kernel_name)
    try:
        info = client.kernel_info(reply=True, timeout=60)["content"]["language_info"]
        spec = manager.kernel_spec
        kernelspec = {
            "display_name": spec.display_name,
            "language": spec.language,
            "name": kernel_name,
        }
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    return kernelspec, info


def run(path: str | Path, fast: bool = False, kernel_name: str = "python3") -> float:
    """Execute ``path`` top to bottom on a fresh kernel, clean it, save it; return the seconds."""
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    os.environ["FDRL_FAST"] = "1" if fast else "0"
    start = time.perf_counter()
    NotebookClient(
        nb,
        kernel_name=kernel_name,
        timeout=None,
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    seconds = time.perf_counter() - start
    kernelspec, language_info = kernel_metadata(kernel_name)
    nb.metadata["kernelspec"] = kernelspec
    nb.metadata["language_info"] = language_info
    nbformat.write(clean_outputs(nb), path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fdrl_lib.lectures", description=__doc__)
    parser.add_argument("notebooks", nargs="*", help="default: every lectures/*.ipynb")
    parser.add_argument("--fast", action="store_true", help="FDRL_FAST=1 (small budgets)")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted(str(p) for p in Path("lectures").glob("*.ipynb"))
    for notebook in notebooks:
        seconds = run(notebook, fast=args.fast)
        print(f"{notebook}: ran in {seconds:.0f} s ({'fast' if args.fast else 'full'} mode), saved")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
