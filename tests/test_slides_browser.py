"""Every slide of every lecture deck fits a 1100x800 reveal.js slide in a 1280x720 window.

Opens each deck (built offline by ``fdrl slides``) in headless Chromium, walks through every
slide, and fails when a slide's content reaches outside the slide, when a code line or an output
is cut off, when a request leaves the machine, or when math is left untypeset. A screenshot of
every slide is saved under ``build/slide-screenshots/<deck>/`` to look at.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from browser import Browser, chromium_path

ROOT = Path(__file__).resolve().parents[1]
LECTURES = sorted((ROOT / "lectures").glob("[0-9][0-9]_*.ipynb"))
SCREENSHOTS = ROOT / "build" / "slide-screenshots"

pytestmark = [
    pytest.mark.skipif(
        chromium_path() is None, reason="needs Debian's chromium (apt-get install chromium)"
    ),
    pytest.mark.xdist_group("chromium"),
]

# Runs in the deck after MathJax: for the current slide, every box that reaches outside the
# 1100x800 slide area, and every element whose own content is cut (wider/taller than its box).
MEASURE = r"""
(() => {
  // MathJax's hidden copy for screen readers is clipped on purpose: not content to measure.
  if (!document.getElementById('fdrl-measure')) {
    const style = document.createElement('style');
    style.id = 'fdrl-measure';
    style.textContent = 'mjx-assistive-mml { display: none !important; }';
    document.head.appendChild(style);
  }
  const slide = Reveal.getCurrentSlide();
  const area = document.querySelector('.reveal .slides').getBoundingClientRect();
  const scale = Reveal.getScale();
  const tol = 2 * scale;
  const problems = [];
  const name = (el) => {
    const cls = typeof el.className === 'string' ? el.className.trim().split(/\s+/) : [];
    return [el.tagName.toLowerCase(), ...cls.slice(0, 2)].filter(Boolean).join('.');
  };
  for (const el of slide.querySelectorAll('*')) {
    const style = getComputedStyle(el);
    if (style.display === 'none' || style.visibility === 'hidden') continue;
    if (el.closest('aside.notes')) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    const out = Math.max(area.top - r.top, r.bottom - area.bottom, area.left - r.left,
                         r.right - area.right);
    if (out > tol) problems.push(`${name(el)} reaches ${Math.round(out / scale)}px outside`);
    const clips = /(hidden|auto|scroll|clip)/.test(style.overflowX + style.overflowY);
    const cut = el.scrollWidth > el.clientWidth + 2 || el.scrollHeight > el.clientHeight + 2;
    if (clips && cut && !el.tagName.startsWith('MJX-')) {
      problems.push(`${name(el)} cuts its content (${el.scrollWidth}x${el.scrollHeight} in ` +
                    `${el.clientWidth}x${el.clientHeight})`);
    }
  }
  // TeX left as text outside code (MathJax failed or never ran on this slide)
  const prose = slide.cloneNode(true);
  prose.querySelectorAll('pre, code, .highlight, mjx-container').forEach((e) => e.remove());
  const untypeset = /\$\$|\\tag\{|\\frac|\\sum_|\\mathbb/.test(prose.textContent);
  // a Python object's repr where a picture should be (an output nbconvert could not render)
  if (/<IPython\.core\.display\.\w+ object>|<Figure size/.test(slide.innerText)) {
    problems.push('an output shows as a Python repr, not as a picture');
  }
  return {problems: [...new Set(problems)].slice(0, 6), untypeset,
          errors: slide.querySelectorAll('mjx-merror').length};
})()
"""


@pytest.fixture(scope="module")
def browser():
    with Browser(1280, 720) as b:
        yield b


@pytest.mark.parametrize("notebook", LECTURES, ids=[p.stem for p in LECTURES])
def test_every_slide_fits_typesets_and_stays_offline(notebook: Path, tmp_path: Path, browser):
    from fdrl_lib.slides import build_deck

    deck = build_deck(notebook, tmp_path)
    browser.requests.clear()
    browser.goto(deck.as_uri())
    browser.wait_for("window.Reveal && Reveal.isReady()")
    browser.wait_for(
        "window.MathJax && MathJax.startup && MathJax.startup.promise"
        " && MathJax.startup.promise.then(() => true)"
    )
    slides = browser.evaluate(
        "Reveal.getSlides().map(s => { const i = Reveal.getIndices(s); return [i.h, i.v]; })"
    )
    shots = SCREENSHOTS / notebook.stem
    shots.mkdir(parents=True, exist_ok=True)
    for old in shots.glob("*.png"):
        old.unlink()
    failures = []
    for number, (h, v) in enumerate(slides, start=1):
        # what a presenter gets on arriving at the slide: math typeset, the slide fitted
        browser.evaluate(f"Reveal.slide({h}, {v or 0}, 99); fdrlFit(Reveal.getCurrentSlide())")
        result = browser.evaluate(MEASURE)
        browser.screenshot(shots / f"{number:02d}.png")
        if result["problems"] or result["untypeset"] or result["errors"]:
            failures.append(f"slide {number} ({h}/{v or 0}): {json.dumps(result)}")
    remote = browser.remote_requests()
    assert remote == [], f"requests left the machine: {remote}"
    assert failures == [], f"{len(failures)} of {len(slides)} slides do not fit:\n" + "\n".join(
        failures
    )
