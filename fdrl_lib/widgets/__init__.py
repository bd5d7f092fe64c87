"""Interactive demos, one module per lecture (``fdrl_lib.widgets.lecture1``, ...).

Each demo shows a static matplotlib picture first (what a saved notebook, GitHub and the slides
display) and then live ipywidgets controls that redraw it while a kernel runs. Import the lecture
module you need; importing this package loads nothing heavy.
"""
