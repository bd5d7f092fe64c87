"""Secret hidden cases (issue 14, defect 2): the instructor's secret derives the hidden cases'
seeds, so a stub returning answers precomputed from the public seeds earns only the visible
cases; without a secret (self-study) grading still works and says hidden cases are practice."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from fdrl_lib.grading.exercises import lectures
from fdrl_lib.grading.runner import grade_notebook, make_plan, render_text
from fdrl_lib.grading.sandbox import Limits, isolation
from fdrl_lib.grading.secret import hidden_seed

sys.path.insert(0, str(Path(__file__).parent))
from grading_fixtures import submissions as fx  # noqa: E402

LIMITS = Limits(timeout=90, cell_timeout=20, case_timeout=5)


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(np.asarray(a[k]), b[k]) for k in a)


@pytest.mark.parametrize("name", ["01_mdps", "02_dqn"])
def test_every_hidden_case_takes_a_seed_and_its_inputs_change_with_it(name):
    for exercise in lectures()[name].exercises:
        for case in exercise.cases:
            if case.hidden:
                assert case.seeded, f"{exercise.number} {case.name}: make_inputs(seed=...)"
                assert not _same(case.make_inputs(1234567), case.make_inputs(7654321)), case.name


def test_a_secret_changes_the_hidden_inputs_and_nothing_else():
    lecture = lectures()["01_mdps"]
    practice, secret = make_plan(lecture), make_plan(lecture, b"instructor secret")
    other = make_plan(lecture, b"another secret")
    for number, cases in practice.cases.items():
        for plain, sealed, third in zip(
            cases, secret.cases[number], other.cases[number], strict=True
        ):
            if plain.case.hidden:
                assert not _same(plain.inputs, sealed.inputs)
                assert not _same(sealed.inputs, third.inputs)
            else:
                assert _same(plain.inputs, sealed.inputs)
    assert hidden_seed(b"k", "01_mdps", "e1.2c3") == hidden_seed(b"k", "01_mdps", "e1.2c3")


PRECOMPUTED = """
import hashlib, json, numpy as np
ANSWERS = json.loads(ANSWERS_JSON)
def value_iteration(P, R, gamma, horizon=None, tol=1e-10):
    key = hashlib.sha256(np.asarray(P).tobytes() + repr((gamma, horizon)).encode()).hexdigest()
    V, policy = ANSWERS[key]  # answers computed offline from the public seeds
    return np.array(V), np.array(policy)
"""

LEAK = """
import glob, os
found = [k + "=" + v for k, v in os.environ.items() if "SECRET" in k]
for path in [SECRET_FILE] + glob.glob("/proc/*/environ"):
    try:
        found.append(open(path, "rb").read().decode(errors="ignore"))
    except OSError:
        pass
raise RuntimeError("LEAK " + " | ".join(found))
"""


def _precomputed_notebook(secret_file: Path) -> nbformat.NotebookNode:
    plan = make_plan(lectures()["01_mdps"])
    answers = {}
    for pc in plan.cases["1.2"]:
        P, gamma, H = pc.inputs["P"], pc.inputs["gamma"], pc.inputs.get("horizon")
        key = hashlib.sha256(np.asarray(P).tobytes() + repr((gamma, H)).encode()).hexdigest()
        answers[key] = (pc.reference["V"].tolist(), pc.reference["Q"].argmax(axis=1).tolist())
    nb = nbformat.read(fx.EXERCISE, as_version=4)
    fx.append(nb, f"ANSWERS_JSON = {json.dumps(json.dumps(answers))}\n" + PRECOMPUTED)
    fx.append(nb, f"SECRET_FILE = {str(secret_file)!r}\n" + LEAK)
    return nb


def test_answers_precomputed_from_public_seeds_earn_only_the_visible_cases(tmp_path, monkeypatch):
    secret_file = tmp_path / "instructor" / "secret.txt"
    secret_file.parent.mkdir()
    secret_file.write_text("s3cret-seed-material\n")
    path = tmp_path / "class" / "precomputed.ipynb"
    path.parent.mkdir()
    nbformat.write(_precomputed_notebook(secret_file), path)

    practice = grade_notebook(path, limits=LIMITS)
    assert practice.parts[1].score == 5 and practice.hidden_cases == "practice"
    assert "hidden cases use their public seeds and are practice only" in render_text(practice)

    monkeypatch.setenv("FDRL_GRADER_SECRET_FILE", str(secret_file))
    graded = grade_notebook(path, limits=LIMITS)
    assert graded.hidden_cases == "secret" and "practice only" not in render_text(graded)
    part = graded.parts[1]
    assert part.score == 3  # the three visible cases; the two hidden ones have secret inputs
    assert all(case.earned == 0 for case in part.cases if case.hidden)
    if isolation().kind != "none":  # unsealed, the kernel can read the grader's files
        text = json.dumps(graded.to_dict())
        assert "LEAK" in text and "s3cret-seed-material" not in text
    from fdrl_lib.grading.secret import secret_tag

    assert secret_tag() != "practice"
