"""Imports run one way (STYLE.md "Which way imports run"): a module imports only from its own
floor or below, and no two library modules import each other (directly or round a cycle).

Every ``import fdrl_lib...`` counts, also one inside a function: a lazy import is still a
dependency.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fdrl_lib"

# floor of each top-level part of the package, lowest first (STYLE.md)
FLOORS = {
    "__init__": 1,
    "tabular": 1,
    "returns": 1,
    "buffers": 1,
    "envs": 1,
    "nn": 1,
    "training": 1,
    "dynamics": 1,
    "algos": 2,
    "plotting": 3,
    "widgets": 3,
    "grading": 3,
    "slides": 3,
    "lectures": 3,
    "slides_assets": 3,
    "sweep": 3,
    "cli": 4,
    "doctor": 4,
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, package: str | None = None) -> set[str]:
    """Every fdrl_lib module that ``path`` imports, relative imports resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    if package is None:
        package = _module_name(path) if path.name == "__init__.py" else _module_name(path.parent)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("fdrl_lib")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.startswith("fdrl_lib"):
                found.add(module)
                found |= {f"{module}.{a.name}" for a in node.names}
    return found


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _known(module: str, modules: set[str]) -> str | None:
    """The library module that ``module`` names (dropping an imported attribute's name)."""
    while module and module not in modules:
        module = module.rpartition(".")[0]
    return module or None


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    return {
        name: {m for m in (_known(i, modules) for i in _imports(path)) if m and m != name}
        for name, path in files.items()
    }


def test_every_part_of_the_package_has_a_floor():
    parts = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()}
    parts = {p for p in parts if not p.startswith((".", "_")) or p == "__init__"} - {"py"}
    assert parts - set(FLOORS) <= {"__pycache__"}, parts - set(FLOORS)


@pytest.mark.parametrize("module", sorted(_graph()))
def test_no_import_runs_upward(module):
    floor = FLOORS[_part(module)]
    upward = [m for m in _graph()[module] if FLOORS[_part(m)] > floor]
    assert not upward, f"{module} (floor {floor}) imports {upward} from a higher floor"


def test_no_two_library_modules_import_each_other():
    graph = _graph()

    # parent packages importing their own submodules (lazy __getattr__) are not cycles
    def edges(m):
        return {n for n in graph[m] if not n.startswith(m + ".") and not m.startswith(n + ".")}

    state: dict[str, int] = {}

    def visit(m, path):
        state[m] = 1
        for n in edges(m):
            if state.get(n) == 1:
                cycle = path[path.index(n) :] + [n]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if n not in state:
                visit(n, path + [n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def test_the_planted_upward_import_is_caught(tmp_path):
    # the checker itself works: an algorithm importing the CLI is reported
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from fdrl_lib.cli import main\n    from ..grading import x\n")
    found = _imports(bad, package="fdrl_lib.algos")
    assert {"fdrl_lib.cli", "fdrl_lib.grading"} <= found
