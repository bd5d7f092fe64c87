"""What every lecture notebook promises: papermill parameters, slides, saved outputs, offline deck.

Lecture-specific content (equations, demos) is tested in ``test_lectureNN_notebook.py``; running
each notebook in fast mode lives there too, so its outputs can be checked.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from conftest import code_outputs

LECTURES = sorted((Path(__file__).resolve().parents[1] / "lectures").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(params=LECTURES, ids=[p.stem for p in LECTURES], scope="module")
def lecture(request) -> tuple[Path, nbformat.NotebookNode]:
    return request.param, nbformat.read(request.param, as_version=4)


def test_there_is_a_notebook_per_lecture_so_far() -> None:
    assert [p.stem[:2] for p in LECTURES] == [f"{i:02d}" for i in range(1, len(LECTURES) + 1)]


def test_parameters_cell_is_the_first_code_cell_and_sets_fast(lecture) -> None:
    _, nb = lecture
    first_code = next(cell for cell in nb.cells if cell.cell_type == "code")
    assert "parameters" in first_code.metadata.get("tags", [])
    assert re.search(r"^FAST = ", first_code.source, re.M)


def test_every_cell_has_slide_metadata(lecture) -> None:
    _, nb = lecture
    allowed = {"slide", "subslide", "fragment", "skip", "notes", "-"}
    types = [cell.metadata.get("slideshow", {}).get("slide_type") for cell in nb.cells]
    assert set(types) <= allowed
    assert types[0] == "slide" and types.count("slide") >= 8


def test_notebook_is_committed_with_outputs_and_stays_small(lecture) -> None:
    path, nb = lecture
    assert path.stat().st_size < 2 * 2**20
    outputs = code_outputs(nb)
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 10
    assert not [o for o in outputs if o.output_type == "error"]


def test_deck_builds_offline_with_numbered_equations(lecture, tmp_path: Path) -> None:
    from fdrl_lib.slides import build_deck, remote_urls

    path, _ = lecture
    html = build_deck(path, tmp_path).read_text()
    assert remote_urls(html) == []
    assert html.count("<section") >= 8
    assert re.search(r"\\tag\{" + str(int(path.stem[:2])) + r"\.\d+\}", html)


def test_saved_notebook_opens_clean_in_jupyterlab(lecture) -> None:
    """No widget view without its kernel, no run-time metadata, and the kernel's own metadata.

    JupyterLab marks a notebook modified when the kernel's kernelspec or language_info differ
    from the saved ones; a widget view saved without its state shows "model not found".
    """
    from jupyter_client.kernelspec import KernelSpecManager

    from fdrl_lib.lectures import RUNTIME_METADATA, WIDGET_VIEW

    _, nb = lecture
    assert not [key for key in RUNTIME_METADATA if key in nb.metadata]
    spec = KernelSpecManager().get_kernel_spec("python3")
    assert nb.metadata.kernelspec == {
        "display_name": spec.display_name,
        "language": "python",
        "name": "python3",
    }
    assert nb.metadata.language_info["name"] == "python"
    outputs = code_outputs(nb)
    assert not [o for o in outputs if WIDGET_VIEW in o.get("data", {})]
    assert not [o for o in outputs if "<script" in str(o.get("data", {}).get("text/html", ""))]


def test_clean_outputs_keeps_a_widgets_text_note_and_drops_bare_widgets() -> None:
    from fdrl_lib.lectures import WIDGET_VIEW, clean_outputs
    from fdrl_lib.widgets import STATIC_NOTE

    view = {WIDGET_VIEW: {"model_id": "abc", "version_major": 2, "version_minor": 0}}
    nb = nbformat.v4.new_notebook(metadata={"widgets": {"state": {}}, "papermill": {}})
    cell = nbformat.v4.new_code_cell("demo()")
    cell.metadata["papermill"] = {"duration": 1.0}
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={"image/png": "iVBOR"}),
        nbformat.v4.new_output("display_data", data={**view, "text/plain": STATIC_NOTE}),
        nbformat.v4.new_output("display_data", data=dict(view)),  # a bare widget
        nbformat.v4.new_output(  # tqdm's bar: its first frame as text
            "display_data", data={**view, "text/plain": "dqn:   0%|          | 0/50000"}
        ),
    ]
    nb.cells = [cell]
    clean_outputs(nb)
    assert "widgets" not in nb.metadata and "papermill" not in nb.metadata
    assert "papermill" not in nb.cells[0].metadata
    assert [dict(o["data"]) for o in nb.cells[0].outputs] == [
        {"image/png": "iVBOR"},
        {"text/plain": STATIC_NOTE},
    ]
