"""pyproject.toml and environment.yml must list the same pinned packages."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_pins() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return dict(_split(d) for d in deps)


def _environment_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "environment.yml").read_text().splitlines():
        m = re.match(r"^\s+-\s+([A-Za-z0-9_.\-]+==\S+)\s*$", line)
        if m:
            name, version = _split(m.group(1))
            pins[name] = version
    return pins


def _split(requirement: str) -> tuple[str, str]:
    name, sep, version = requirement.partition("==")
    assert sep, f"{requirement!r} is not pinned with =="
    return name.strip().lower().replace("_", "-"), version.strip()


def test_every_dependency_is_pinned_exactly():
    for name, version in _pyproject_pins().items():
        assert re.fullmatch(r"[0-9][0-9A-Za-z.]*", version), f"{name} has a loose pin {version}"


def test_environment_yml_matches_pyproject():
    assert _environment_pins() == _pyproject_pins()


def test_torch_is_pinned_to_the_cpu_build():
    assert _pyproject_pins()["torch"] == "2.13.0"
