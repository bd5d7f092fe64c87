"""Time a class of 30 distinct lecture 1 submissions graded with --jobs 2 (fresh cache).

Usage, from a checkout: ``python tests/grading_fixtures/class30.py .`` (the argument is the
checkout whose tests/grading_fixtures builds the submissions). Prints wall seconds and CPU
seconds (grader and kernels) per submission. docs/grading.md quotes its figures.
"""

import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat

root = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
sys.path.insert(0, str(root / "tests"))
import fdrl_lib  # noqa: E402
from fdrl_lib.grading import grade_batch  # noqa: E402
from grading_fixtures import submissions as fx  # noqa: E402

print("fdrl_lib from", fdrl_lib.__file__)
kinds = ["solution"] * 10 + ["blank"] * 10 + ["bug_no_discount"] * 5 + ["bug_wrong_axis"] * 5
folder = Path(tempfile.mkdtemp(prefix="class30-"))
for i, kind in enumerate(kinds):
    if kind in ("solution", "blank"):
        nb = nbformat.read(fx.SOLUTION if kind == "solution" else fx.EXERCISE, as_version=4)
    else:
        nb = fx.build(kind)
    nb.metadata["learner"] = f"learner{i:02d}"
    nbformat.write(nb, folder / f"learner{i:02d}.ipynb")
start = time.monotonic()
reports = grade_batch(str(folder), folder / "graded", jobs=2, progress=False)
s = time.monotonic() - start
print("totals", sorted(r.score for r in reports))
print(f"30 submissions: {s:.1f} s, {s / 30:.2f} s each")
shutil.rmtree(folder)
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
print(f"CPU time (grader + kernels): {cpu:.1f} s, {cpu / 30:.2f} s per submission")
