"""Full-mode run times: recorded per notebook or benchmark, shown as README's table."""

from __future__ import annotations

import json

import nbformat

from fdrl_lib import lectures


def test_the_readme_and_start_page_tables_are_the_recorded_times():
    text = lectures.README.read_text()
    assert lectures.with_table(text) == text, "run: python -m fdrl_lib.lectures --table"
    page = nbformat.read(lectures.START_PAGE, as_version=4)
    before = page.cells[0].source
    assert lectures.with_start_table(page).cells[0].source == before, "run: ... --table"


def test_the_start_page_links_every_lecture_and_every_exercise_that_exists(tmp_path):
    table = lectures.start_table(tmp_path / "none.json")
    for number, stem, _, _ in lectures.LECTURES:
        assert f"| {number} | [" in table and f"(lectures/{stem}.ipynb)" in table
        for folder in ("exercises", "solutions"):
            exists = (lectures.ROOT / folder / f"{stem}.ipynb").exists()
            assert (f"({folder}/{stem}.ipynb)" in table) == exists, (folder, stem)
    for link in lectures.ROOT.joinpath("START_HERE.ipynb").read_text().split("](")[1:]:
        target = link.split(")")[0]
        if not target.startswith("http"):
            assert (lectures.ROOT / target).exists(), target


def test_a_record_replaces_the_older_run_of_the_same_notebook_and_mode_and_keeps_the_rest(tmp_path):
    times = tmp_path / "times.json"
    older = lectures.measured(100.0, 90.0, 3.0)
    lectures.record("benchmarks/run.py sac --seeds 5 --peer sb3", older, times)
    lectures.record(lectures.ROOT / "lectures" / "01_mdps.ipynb", older, times)
    lectures.record("lectures/01_mdps.ipynb", lectures.measured(30.0, 29.0, 0.5), times)
    lectures.record("lectures/01_mdps.ipynb", lectures.measured(5.0, 4.0, 0.5, fast=True), times)
    data = json.loads(times.read_text())
    assert set(data) == {"benchmarks/run.py sac --seeds 5 --peer sb3", "lectures/01_mdps.ipynb"}
    assert data["lectures/01_mdps.ipynb"]["full"]["cpu_s"] == 29.0
    table = lectures.times_table(times)
    assert "| `lectures/01_mdps.ipynb` | 29 s | 30 s (0.5, " in table
    assert "| `benchmarks/run.py sac --seeds 5 --peer sb3` | 1.5 min | 1.7 min (3, " in table
    start = lectures.start_table(times)
    assert "(lectures/01_mdps.ipynb) | - | " in start and "| 29 s / 4 s |" in start


def test_a_run_counts_the_kernels_cpu_seconds_and_saves_nothing_when_told(tmp_path):
    path = tmp_path / "burn.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass"
        )
    ]
    nbformat.write(nb, path)
    before = path.read_text()
    timing = lectures.run(path, fast=True, save=False)
    assert timing["cpu_s"] >= 0.5 and timing["wall_s"] >= 0.5
    assert timing["mode"] == "fast"
    assert path.read_text() == before
