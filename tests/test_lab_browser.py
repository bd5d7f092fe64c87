"""`make lab` as a learner meets it, in headless Chromium.

Starts the real `make lab` (no browser, a free port, a test token) and checks: it serves the
repository root and opens on START_HERE.ipynb; the start page and both lectures open unmodified
(no unsaved-changes dot) once their kernel is connected, with no "Error displaying widget"; the
lab's terminal finds `fdrl` in the venv; nothing is requested from outside this machine.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from browser import Browser, chromium_path

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)
TOKEN = "fdrl-test-token"

pytestmark = [
    pytest.mark.skipif(
        chromium_path() is None, reason="needs Debian's chromium (apt-get install chromium)"
    ),
    pytest.mark.skipif(
        not (VENV / ".fdrl-installed").is_file(),
        reason="runs `make lab` on the venv that `make install` made (this is not one)",
    ),
    pytest.mark.xdist_group("chromium"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.load(reply)


@pytest.fixture(scope="module")
def lab():
    port = _free_port()
    args = f"--no-browser --port {port} --IdentityProvider.token={TOKEN}"
    proc = subprocess.Popen(
        ["make", "-s", "lab", f"VENV={VENV}", f"LAB_ARGS={args}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # so the whole group (make, jupyter, kernels) can be stopped
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            _get(f"{base}/api/status?token={TOKEN}")
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGTERM)
                pytest.fail(f"make lab did not start:\n{proc.stdout.read()}")
            time.sleep(0.5)
    yield base
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def browser():
    with Browser(1280, 900) as b:
        yield b


TABS = (
    "[...document.querySelectorAll('.lm-DockPanel .lm-TabBar-tab')]"
    ".map(t => ({title: t.innerText.trim(), dirty: t.classList.contains('jp-mod-dirty'),"
    " current: t.classList.contains('lm-mod-current')}))"
)
KERNEL_IDLE = (
    "(() => { const s = document.querySelector('.jp-Notebook-ExecutionIndicator');"
    " return s !== null && s.getAttribute('data-status') === 'idle'; })()"
)


def test_lab_serves_the_repository_root_and_starts_on_the_start_page(lab: str) -> None:
    names = {item["name"] for item in _get(f"{lab}/api/contents?token={TOKEN}")["content"]}
    assert {"START_HERE.ipynb", "lectures", "exercises", "solutions"} <= names
    with urllib.request.urlopen(f"{lab}/?token={TOKEN}", timeout=10) as reply:
        assert reply.geturl().split("?")[0].endswith("/lab/tree/START_HERE.ipynb")


def test_lab_opens_on_the_start_page_and_notebooks_open_unmodified(lab: str, browser) -> None:
    browser.goto(f"{lab}/?token={TOKEN}", settle=1)
    browser.wait_for("document.querySelectorAll('.jp-Notebook .jp-Cell').length > 1", timeout=120)
    browser.wait_for(KERNEL_IDLE, timeout=120)
    time.sleep(3)  # JupyterLab writes the kernel's metadata once the kernel is ready
    tabs = browser.evaluate(TABS)  # (a workspace saved by an earlier session may add tabs)
    assert {"title": "START_HERE.ipynb", "dirty": False, "current": True} in tabs, tabs
    assert not [tab for tab in tabs if tab["dirty"]], tabs
    links = browser.evaluate("[...document.querySelectorAll('.jp-Notebook a')].map(a => a.href)")
    for folder in ("lectures", "exercises", "solutions"):
        assert any(f"/{folder}/01_mdps.ipynb" in link for link in links), (folder, links)
    for notebook in ("lectures/01_mdps.ipynb", "lectures/02_dqn.ipynb"):
        browser.goto(f"{lab}/lab/tree/{notebook}?token={TOKEN}&reset", settle=1)
        browser.wait_for(
            "document.querySelectorAll('.jp-Notebook .jp-Cell').length > 10", timeout=120
        )
        browser.wait_for(KERNEL_IDLE, timeout=120)
        time.sleep(3)
        tabs = browser.evaluate(TABS)
        assert {"title": Path(notebook).name, "dirty": False, "current": True} in tabs, tabs
        broken = browser.evaluate(
            "[...document.querySelectorAll('.jp-OutputArea-output')].map(e => e.innerText)"
            ".filter(t => /Error displaying widget|model not found/.test(t))"
        )
        assert broken == []
    assert browser.remote_requests() == []


def test_fdrl_is_on_the_lab_terminals_path(lab: str) -> None:
    import websocket

    request = urllib.request.Request(f"{lab}/api/terminals?token={TOKEN}", method="POST")
    with urllib.request.urlopen(request, timeout=10) as reply:
        name = json.load(reply)["name"]
    ws_url = lab.replace("http://", "ws://") + f"/terminals/websocket/{name}?token={TOKEN}"
    ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
    try:
        # the quotes keep the echoed command line from matching: only the output says FDRL=/...
        ws.send(json.dumps(["stdin", 'echo "FDRL""=$(command -v fdrl)"\r']))
        seen, deadline = "", time.monotonic() + 30
        while not re.search(r"FDRL=(/\S+)", seen) and time.monotonic() < deadline:
            kind, *payload = json.loads(ws.recv())
            if kind == "stdout":
                seen += payload[0]
    finally:
        ws.close()
    found = re.search(r"FDRL=(/\S+)", seen)
    assert found and found.group(1) == str(VENV / "bin" / "fdrl"), seen[-500:]


PRESENT = "[...document.querySelectorAll('.reveal .slides section.present')].pop()"  # innermost


def test_live_slides_present_a_lecture_offline_with_its_math(lab: str, browser) -> None:
    """jupyterlab-rise's page for a lecture: reveal.js slides, MathJax typeset, the theme's fonts
    from this machine (reveal's default theme for RISE, "simple", fetches Google Fonts; our
    lab-overrides.json picks "white"), and the arrows move through the deck."""
    shots = ROOT / "build" / "slide-screenshots" / "rise"
    browser.goto(f"{lab}/rise/lectures/01_mdps.ipynb?token={TOKEN}", settle=2)
    browser.wait_for("document.querySelectorAll('.reveal .slides > section').length > 10", 180)
    browser.wait_for("document.querySelectorAll('mjx-container').length > 20", 120)
    browser.wait_for(f"{PRESENT} !== undefined", 60)  # reveal.js has shown the first slide
    seen = []
    for number in range(4):
        slide = browser.evaluate(f"{PRESENT}.innerText")
        assert "\\tag" not in slide and "$$" not in slide, slide[:300]  # typeset, not raw TeX
        seen.append(slide.split("\n")[0])
        browser.screenshot(shots / f"{number:02d}.png")
        browser.evaluate("document.querySelector('.reveal .controls .navigate-right').click()")
        time.sleep(1.5)
    assert "LECTURE 1" in seen[0].upper(), seen
    assert len(set(seen)) == len(seen), seen  # it moved on at each click
    assert browser.remote_requests() == []
