"""FilterInput types, scrolls and draws as Textual's Input does, without laying the screen out."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.screen import Screen
from textual.widgets import Input

from dashboard.widgets.filter_input import FilterInput

TYPED = "user12348@contoso.example and more to scroll"


class BothInputsApp(App[None]):
    CSS = "Input { width: 24; height: 3; }"

    def compose(self) -> ComposeResult:
        yield FilterInput(id="filter")
        yield Input(id="textual")


def drawn(box: Input) -> list[str]:
    strips = box.render_lines(Region(0, 0, *box.outer_size))
    return ["".join(segment.text for segment in strip) for strip in strips]


async def test_typing_scrolls_and_draws_as_textual_input_does(monkeypatch) -> None:
    """Same value, scroll and drawing as an Input after typing past its width; no layout."""
    layouts: list[object] = []
    refresh_layout = Screen._refresh_layout

    def counted(screen: Screen[object], *args: object, **kwargs: object) -> None:
        layouts.append(screen)
        refresh_layout(screen, *args, **kwargs)  # type: ignore[arg-type]

    app = BothInputsApp()
    async with app.run_test(size=(60, 10)) as pilot:
        ours, theirs = app.query_one("#filter", Input), app.query_one("#textual", Input)
        monkeypatch.setattr(Screen, "_refresh_layout", counted)
        laid_out = []
        for box in (ours, theirs):
            box.focus()
            await pilot.pause()
            layouts.clear()
            await pilot.press(*TYPED)
            await pilot.pause()
            laid_out.append(len(layouts))
        assert laid_out[0] == 0, "typing into FilterInput laid the screen out"
        assert laid_out[1] > 0, "Textual's Input does (else this test proves nothing)"
        assert ours.value == theirs.value == TYPED
        assert ours.scroll_x == theirs.scroll_x > 0  # the cursor kept in view
        assert ours.virtual_size == theirs.virtual_size
        await pilot.press("home")
        ours.focus()
        await pilot.press("home")
        await pilot.pause()
        assert ours.scroll_x == theirs.scroll_x == 0
        await pilot.press("end")
        theirs.focus()
        await pilot.press("end")
        await pilot.pause()
        ours.focus()  # both drawn unfocused (the cursor blinks only in the focused one)
        app.set_focus(None)
        await pilot.pause()
        assert drawn(ours) == drawn(theirs)
        assert TYPED[-10:] in "".join(drawn(ours))
