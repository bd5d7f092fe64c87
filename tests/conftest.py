"""Fixtures shared by several test files."""

import pytest


@pytest.fixture
def displayed(monkeypatch) -> list[tuple[str, object]]:
    """Record what ``IPython.display.display`` shows, and the in-place updates of its handles.

    Each entry is ``("display", obj)`` or ``("update", obj)``; widgets are tested without a
    browser by checking what they would have put on the page.
    """
    import IPython.display

    shown: list[tuple[str, object]] = []

    class Handle:
        def update(self, obj):
            shown.append(("update", obj))

    def fake_display(obj, *args, **kwargs):
        shown.append(("display", obj))
        return Handle() if kwargs.get("display_id") else None

    monkeypatch.setattr(IPython.display, "display", fake_display)
    return shown
