"""`fdrl slides`: the lecture-1 deck builds offline (no CDN), with its local assets and sections."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest

from fdrl_lib.slides import ASSETS_DIR, build_deck, main_slides, referenced_urls, remote_urls

ROOT = Path(__file__).resolve().parents[1]
LECTURE1 = ROOT / "lectures" / "01_mdps.ipynb"


@pytest.fixture(scope="module")
def deck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_deck(LECTURE1, tmp_path_factory.mktemp("slides"))


def test_lecture1_deck_references_no_cdn(deck: Path) -> None:
    html = deck.read_text(encoding="utf-8")
    tags = re.findall(r"<(?:script|link)\b[^>]*>", html, re.I)
    offending = [tag for tag in tags if re.search(r"""(src|href)\s*=\s*["'](https?:)?//""", tag)]
    assert offending == []
    assert remote_urls(html) == []


def test_lecture1_deck_loads_reveal_and_mathjax_from_files_beside_it(deck: Path) -> None:
    urls = referenced_urls(deck.read_text(encoding="utf-8"))
    local = [url for url in urls if not url.startswith("data:")]
    assert any(url.endswith("reveal.js/dist/reveal.js") for url in local)
    assert any("mathjax/tex-chtml" in url for url in local)
    missing = [url for url in local if not (deck.parent / unquote(urlparse(url).path)).is_file()]
    assert missing == []


def test_lecture1_deck_has_slide_sections_and_numbered_equations(deck: Path) -> None:
    html = deck.read_text(encoding="utf-8")
    assert html.count("<section") >= 10
    assert r"\tag{1.7}" in html and r"\tag{1.10}" in html


def test_vendored_assets_are_small_and_licensed() -> None:
    files = [path for path in ASSETS_DIR.rglob("*") if path.is_file()]
    total = sum(path.stat().st_size for path in files)
    assert total < 4 * 2**20
    assert max(path.stat().st_size for path in files) < 4 * 2**20
    assert (ASSETS_DIR / "reveal.js" / "LICENSE").is_file()
    assert (ASSETS_DIR / "mathjax" / "LICENSE").is_file()
    # MathJax's CommonHTML output loads its fonts relative to the script.
    assert list((ASSETS_DIR / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))


def test_remote_urls_flags_cdn_script_and_protocol_relative_link() -> None:
    html = (
        '<script src="https://cdn.example/x.js"></script><link href="//fonts.example/a.css">'
        '<script src="assets/reveal.js/dist/reveal.js"></script>'
    )
    assert remote_urls(html) == ["https://cdn.example/x.js", "//fonts.example/a.css"]


def test_main_slides_writes_a_deck_per_notebook(tmp_path: Path) -> None:
    args = argparse.Namespace(notebooks=[str(LECTURE1)], out=str(tmp_path))
    assert main_slides(args) == 0
    assert (tmp_path / "01_mdps.slides.html").is_file()
    assert (tmp_path / "assets" / "reveal.js" / "dist" / "reveal.css").is_file()


def test_build_deck_rejects_missing_notebook(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        build_deck(tmp_path / "nope.ipynb", tmp_path)


def test_gif_outputs_become_images_on_the_slides(tmp_path: Path) -> None:
    import base64

    import nbformat

    from fdrl_lib import plotting

    gif = plotting.animate([np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8)])
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("animate(frames)")
    data = {"image/gif": base64.b64encode(gif.data).decode(), "text/plain": "<Image object>"}
    cell.outputs = [nbformat.v4.new_output("display_data", data=data)]
    cell.metadata["slideshow"] = {"slide_type": "slide"}
    nb.cells = [cell]
    nbformat.write(nb, tmp_path / "anim.ipynb")
    html = build_deck(tmp_path / "anim.ipynb", tmp_path, copy=False).read_text()
    assert re.search(r'<img[^>]*src="data:image/gif;base64,', html)
    assert "&lt;Image object&gt;" not in html
