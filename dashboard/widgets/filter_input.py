"""FilterInput: a text box whose typing redraws the box, not the screen's layout."""

from __future__ import annotations

from textual.geometry import Size
from textual.reactive import Reactive
from textual.widgets import Input


class FilterInput(Input):
    """An Input of a fixed size that does not lay the screen out again on every key.

    Textual's Input sets its virtual size (its text's width, for scrolling) on every change,
    and a widget's virtual size asks for a layout of the whole screen: ~5-10 ms a key here
    with a table on screen, its scroll bars redrawn. A box whose size comes from its CSS (a
    width and height that are not `auto`) keeps its place whatever it holds, and scrolls its
    text from the virtual size it sets itself; an `auto` box still asks for the layout (the
    Input does so itself).
    """

    virtual_size: Reactive[Size] = Reactive(Size(0, 0))
    """As the Input's, without the layout pass."""
