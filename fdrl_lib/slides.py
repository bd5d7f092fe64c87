"""``fdrl slides``: one offline reveal.js deck per lecture notebook.

nbconvert's ``SlidesExporter`` turns each cell's ``slideshow.slide_type`` metadata into reveal.js
sections. Its stock template loads reveal.js, MathJax, require.js, jQuery and mermaid from CDNs;
here a small template on top of it loads reveal.js 5 and MathJax 3 from ``assets/`` next to the
HTML (vendored in ``fdrl_lib/slides_assets``), so a deck opens from disk with no network.

    fdrl slides                        # every lectures/*.ipynb -> build/slides/<name>.slides.html
    fdrl slides lectures/01_mdps.ipynb --out /tmp/deck
"""

from __future__ import annotations

import argparse
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

ASSETS_DIR = Path(__file__).parent / "slides_assets"
ASSETS_NAME = "assets"  # folder next to the HTML that holds reveal.js and MathJax
REVEAL_PREFIX = f"{ASSETS_NAME}/reveal.js"
MATHJAX_URL = f"{ASSETS_NAME}/mathjax/tex-chtml-full.js"
HIDE_INPUT_TAG = "hide-input"  # cell tag: the slides show this cell's output, not its code

# Extends nbconvert's reveal template (nbconvert 7.x, reveal/index.html.j2): every block that
# would fetch from a CDN is replaced by a local <script>/<link>, and require.js is not needed
# because reveal.js 5's UMD build defines the globals Reveal and RevealNotes.
_TEMPLATE = r"""
{%- extends 'index.html.j2' -%}

{%- block html_head_js -%}
{%- endblock html_head_js -%}

{% block jupyter_widgets %}
{% endblock jupyter_widgets %}

{%- block html_head_js_mathjax -%}
<script>
window.MathJax = {
  tex: {
    inlineMath: [['$', '$'], ['\\(', '\\)']],
    displayMath: [['$$', '$$'], ['\\[', '\\]']],
    processEscapes: true,
    processEnvironments: true,
    tags: 'none'
  },
  chtml: { displayAlign: 'center' },
  options: { ignoreHtmlClass: 'tex2jax_ignore', processHtmlClass: 'tex2jax_process' },
  startup: { typeset: true }
};
</script>
<script src="{{ resources.mathjax_url }}" async></script>
{%- endblock html_head_js_mathjax -%}

{%- block html_head_css -%}
<style>
:root { --jp-code-font-size: 15px; }
/* Fit a 1100x800 slide: code at a size that holds a 100-character line, figures no wider
   than the slide, no box that cuts its content. */
.reveal .jp-Cell { padding: 0; }
.reveal .highlight { margin: 0; }
.reveal pre { box-sizing: border-box; }
.reveal .jp-InputArea-editor, .reveal .jp-CodeMirrorEditor { overflow: visible; }
.reveal .jp-CodeCell pre, .reveal .jp-OutputArea-output pre, .reveal .highlight pre {
  font-size: 15px; line-height: 1.3; width: auto; margin: 0; box-shadow: none;
  white-space: pre; overflow: visible;
}
.reveal .jp-OutputArea-output img { max-width: 100%; height: auto; margin: 4px 0; }
.reveal .jp-RenderedHTMLCommon table { font-size: 20px; }
.reveal .jp-OutputArea-output { overflow: visible; }
.reveal section { text-align: left; }
</style>
{%- endblock html_head_css -%}

{% block footer_js %}
<script src="{{ resources.reveal.url_prefix }}/dist/reveal.js"></script>
<script src="{{ resources.reveal.url_prefix }}/plugin/notes/notes.js"></script>
<script>
Reveal.initialize({
  controls: true,
  progress: true,
  history: true,
  hash: true,
  transition: "{{ resources.reveal.transition | default('slide', true) }}",
  slideNumber: "{{ resources.reveal.number | default('c/t', true) }}",
  width: {{ resources.reveal.width | default('1100', true) }},
  height: {{ resources.reveal.height | default('800', true) }},
  plugins: [RevealNotes]
});
// Fit the current slide: typeset its math, then, if it is taller than the slide, shrink its
// figures (to no less than 45%), then zoom the whole slide (to no less than 75%). What is still
// too tall after that overflows visibly, and tests/test_slides_browser.py fails on it.
window.fdrlFit = async function (slide) {
  const height = {{ resources.reveal.height | default('800', true) }};
  if (window.MathJax && MathJax.typesetPromise) { await MathJax.typesetPromise([slide]); }
  const images = [...slide.querySelectorAll('.jp-OutputArea-output img')];
  await Promise.all(images.map((img) => (img.decode ? img.decode().catch(() => null) : null)));
  slide.style.zoom = '';
  images.forEach((img) => { img.style.maxHeight = ''; });
  let excess = slide.scrollHeight - height;
  const natural = images.map((img) => img.offsetHeight);
  const total = natural.reduce((a, b) => a + b, 0);
  if (excess > 0 && total > 0) {
    const factor = Math.max(0.45, (total - excess - 8) / total);
    images.forEach((img, i) => { img.style.maxHeight = Math.floor(natural[i] * factor) + 'px'; });
    excess = slide.scrollHeight - height;
  }
  if (excess > 0) { slide.style.zoom = Math.max(0.75, height / slide.scrollHeight); }
  Reveal.layout();
  return slide.style.zoom || '1';
};
Reveal.on('ready', function (event) { window.fdrlFit(event.currentSlide); });
Reveal.on('slidechanged', function (event) { window.fdrlFit(event.currentSlide); });
</script>
{% endblock footer_js %}
"""


def _exporter():
    """A SlidesExporter whose every URL points into ``assets/`` (relative to the HTML)."""
    import jinja2
    from nbconvert import SlidesExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    exporter = SlidesExporter(
        extra_loaders=[jinja2.DictLoader({"fdrl_reveal.html.j2": _TEMPLATE})],
        reveal_url_prefix=REVEAL_PREFIX,
        reveal_theme="white",
        reveal_transition="none",
        reveal_number="c/t",
        reveal_width="1100",
        reveal_height="800",
        # Blank the CDN defaults; our template never emits them, and an empty value makes any
        # block we missed fail the offline test instead of silently reaching the network.
        require_js_url="",
        jquery_url="",
        mermaid_js_url="",
        mermaid_layout_elk_js_url="",
        font_awesome_url="",
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    # A code cell tagged "hide-input" shows only its output on the slides (plotting and setup
    # code); the notebook itself still shows the code.
    exporter.register_preprocessor(
        TagRemovePreprocessor(remove_input_tags=(HIDE_INPUT_TAG,), enabled=True), enabled=True
    )
    exporter.template_file = "fdrl_reveal.html.j2"
    exporter.mathjax_url = MATHJAX_URL
    return exporter


def copy_assets(out_dir: str | Path) -> Path:
    """Copy the vendored reveal.js and MathJax into ``out_dir/assets`` (replacing an old copy)."""
    target = Path(out_dir) / ASSETS_NAME
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(ASSETS_DIR, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def _gifs_as_html(nb):
    """Give every animated GIF output an ``<img>`` twin: nbconvert's HTML templates render PNG,
    JPEG and SVG but fall back to the text repr ("<IPython.core.display.Image object>") for GIF."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/gif" in data and "text/html" not in data:
                gif = "".join(data["image/gif"]).replace("\n", "")
                data["text/html"] = f'<img src="data:image/gif;base64,{gif}" alt="animation">'
    return nb


def build_deck(notebook: str | Path, out_dir: str | Path, *, copy: bool = True) -> Path:
    """Write ``out_dir/<notebook stem>.slides.html`` (and, if ``copy``, the assets beside it).

    The notebook is converted as saved: its stored outputs (figures, tables) become the slides'
    pictures, so commit lecture notebooks with outputs.
    """
    import nbformat

    notebook = Path(notebook)
    if not notebook.is_file():
        raise ValueError(f"notebook {str(notebook)!r} does not exist; expected a .ipynb file")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    nb = _gifs_as_html(nbformat.read(notebook, as_version=4))
    body, _ = _exporter().from_notebook_node(nb, resources={"metadata": {"name": notebook.stem}})
    html = out_dir / f"{notebook.stem}.slides.html"
    html.write_text(body, encoding="utf-8")
    if copy:
        copy_assets(out_dir)
    return html


_ATTR_URL = re.compile(
    r"""<(script|link|img|iframe)\b[^>]*?\b(src|href)\s*=\s*["']([^"']*)["']""", re.I
)


def referenced_urls(html: str) -> list[str]:
    """Every ``src``/``href`` of a ``<script>``, ``<link>``, ``<img>`` or ``<iframe>`` tag."""
    return [match.group(3) for match in _ATTR_URL.finditer(html)]


def remote_urls(html: str) -> list[str]:
    """The referenced URLs that would reach the network (``http://``, ``https://``, ``//host``)."""
    return [url for url in referenced_urls(html) if re.match(r"^(https?:)?//", url, re.I)]


def main_slides(args: argparse.Namespace) -> int:
    """Entry point of ``fdrl slides``: build every deck, then check none reaches the network."""
    notebooks: Sequence[str] = getattr(args, "notebooks", None) or sorted(
        str(path) for path in Path("lectures").glob("*.ipynb")
    )
    if not notebooks:
        print("fdrl slides: no notebooks given and none found in lectures/")
        return 1
    out_dir = Path(getattr(args, "out", None) or "build/slides")
    copy_assets(out_dir)
    for notebook in notebooks:
        html = build_deck(notebook, out_dir, copy=False)
        remote = remote_urls(html.read_text(encoding="utf-8"))
        if remote:
            print(f"fdrl slides: {html} still references the network: {remote}")
            return 1
        print(f"wrote {html}")
    print(f"open {out_dir / Path(notebooks[0]).stem}.slides.html in a browser (offline is fine)")
    return 0
