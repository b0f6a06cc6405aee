"""UserLookupScreen: "why can't alice sign in?" — both sides of one user and the verdict."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from dashboard.screens.base import APP_LABELS, ScimwatchScreen, set_focus_now, type_slash
from dashboard.timefmt import stamp
from dashboard.widgets.event_text import status_text
from dashboard.widgets.safe_text import clean
from store.health import lookup_user
from store.models import UserLookup, UserMatch
from store.playbook import parse_service_message


def entra_side(answer: UserLookup) -> Text:
    """Entra: the user, how they are assigned, pending failure, latest events."""
    text = Text(end="")
    user = answer.entra_user
    if user is None:
        text.append("Not found in Entra (not assigned, or not in the cache).\n", style="yellow")
        return text
    text.append(clean(user.display_name, 200) or "(no name)", style="bold")
    text.append(f"\n{clean(user.user_principal_name, 200)}\n{clean(user.id, 80)}\n", style="dim")
    if user.account_enabled is False:
        text.append("Account disabled in Entra\n", style="bold red")
    text.append("\nAssigned\n", style="bold underline")
    for assignment in answer.assignments:
        text.append(f"  {clean(assignment.app, 20)}: {clean(assignment.how, 200)}")
        if assignment.default_access:
            text.append(f" {assignment.role_note}", style="yellow")
        text.append("\n")
    if not answer.assignments:
        text.append("  not assigned to either app\n")
    if answer.nested_only_groups:
        text.append("Only via nested groups (never provisioned): ", style="yellow")
        text.append(", ".join(clean(group, 80) for group in answer.nested_only_groups) + "\n")
    if (pending := answer.pending) is not None:
        text.append("\nPending failure\n", style="bold underline red")
        text.append(f"  {clean(pending.error_code, 80)}\n", style="red")
        if said := parse_service_message(pending.reason):  # not Microsoft's paragraph around it
            text.append("  Harness says: ", style="bold")
            text.append(f"{clean(said, 400)}\n")
        else:
            text.append(f"  {clean(pending.reason, 400)}\n")
        text.append("  What to do: ", style="bold")
        text.append(
            f"{clean(pending.hint.title, 200)} ", style="bold yellow" if pending.escalated else ""
        )
        text.append(f"(failed in {pending.attempts} cycle(s); see Retries)\n")
    text.append("\nLatest events\n", style="bold underline")
    for event in answer.latest_events:
        app = APP_LABELS.get(answer.event_apps.get(event.job_id, ""), "other job")
        text.append(f"  {stamp(event.activity_at)}  {app:<9} {clean(event.action, 20):<7} ")
        text.append_text(status_text(event.status))
        text.append("\n")
        if event.error_code:  # codes run to 60 characters: a line of their own, not a wrap
            text.append(f"    {clean(event.error_code, 60)}\n", style="red")
    if not answer.latest_events:
        text.append("  none\n")
    return text


def harness_side(answer: UserLookup) -> Text:
    """Harness: the user, their groups, sign-in conflicts (Default Access is on the Entra side)."""
    text = Text(end="")
    user = answer.harness_user
    if user is None:
        text.append("Not found in Harness.\n", style="yellow")
    else:
        text.append(clean(user.name, 200) or "(no name)", style="bold")
        text.append(f"\n{clean(user.email, 200)}\n{clean(user.id, 80)}\n", style="dim")
        provisioned = "provisioned by SCIM" if user.in_scim else "not provisioned by SCIM"
        text.append(f"{provisioned}; {'active' if user.active is not False else 'inactive'}\n")
        text.append("\nGroups\n", style="bold underline")
        for group in answer.harness_groups or ("none",):
            text.append(f"  {clean(group, 120)}\n")
    sign_in = [c for c in answer.sso_conflicts if c.kind != "default_access"]
    if sign_in:
        text.append("\nSign-in\n", style="bold underline red")
        for conflict in sign_in:
            text.append(f"  {clean(conflict.detail, 400)}\n")
    return text


def match_line(match: UserMatch) -> Text:
    """One user to pick: name, email, and which side has them."""
    sides = " and ".join(
        side for side, found in (("Entra", match.entra_id), ("Harness", match.harness_id)) if found
    )
    return Text.assemble(
        (clean(match.name, 80) or "(no name)", "bold"),
        "  ",
        (clean(match.email, 120), "dim"),
        f"  in {sides}",
    )


class UserLookupScreen(ScimwatchScreen):
    """Both sides of one user."""

    MODE = "user"
    SUBJECT = "User lookup"
    HELP = (
        "Type a user's UPN, email, Entra object id, or part of a name or email, and press "
        "enter; when several users match, pick one from the list. Left: Entra (how the "
        "user is assigned, directly or through which groups, and which of those have Default "
        "Access, which Entra never provisions; the pending failure and the latest provisioning "
        "events). Right: Harness (the user, their groups, sign-in conflicts). The line at the "
        "top is the verdict: what is wrong and what to do."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("slash", "focus_query", "Search", priority=True),
    ]

    class Answered(Message):
        """A lookup finished."""

        def __init__(self, answer: UserLookup) -> None:
            super().__init__()
            self.answer = answer

    def __init__(self, query: str = "") -> None:
        """The lookup screen, optionally looking `query` up at once."""
        super().__init__()
        self.query_text = query
        self.matches: tuple[UserMatch, ...] = ()
        """The users the last text matched, as the list shows them."""

    def compose_body(self) -> ComposeResult:
        """Search box, verdict, the two sides."""
        yield Input(value=self.query_text, placeholder="Name, UPN, email or object id", id="query")
        yield Static(Text("Type a user and press enter."), id="verdict")
        yield OptionList(id="matches")
        with Horizontal(id="sides"):
            with VerticalScroll(id="entra-side"):
                yield Static("", id="entra")
            with VerticalScroll(id="harness-side"):
                yield Static("", id="harness")

    def on_mount(self) -> None:
        """Frame the sides and put the cursor in the search box."""
        self.query_one("#entra-side").border_title = "Entra ID"
        self.query_one("#harness-side").border_title = "Harness"
        self.query_one("#query", Input).focus()

    def reload(self) -> None:
        """Look the current query up again."""
        if self.query_text.strip():
            self._lookup(self.query_text, self.now())

    @on(Input.Submitted, "#query")
    def _submitted(self, event: Input.Submitted) -> None:
        self.query_text = event.value
        self.reload()

    @work(thread=True, exclusive=True, exit_on_error=False, group="lookup")
    def _lookup(self, query: str, now: datetime) -> None:
        with self.cache.reading() as db:
            answer = lookup_user(db, query, now)
        if not get_current_worker().is_cancelled:
            self.post_message(self.Answered(answer))

    def on_user_lookup_screen_answered(self, message: Answered) -> None:
        """Show both sides, or the users the text matched to pick from."""
        answer = message.answer
        self.query_one("#verdict", Static).update(
            Text.assemble(("Verdict: ", "bold"), clean(answer.verdict, 600))
        )
        self.query_one("#entra", Static).update(entra_side(answer))
        self.query_one("#harness", Static).update(harness_side(answer))
        self._show_matches(answer.matches)

    def _show_matches(self, found: tuple[UserMatch, ...]) -> None:
        """List the users to pick from; a refresh of the same list keeps the highlight."""
        matches = self.query_one("#matches", OptionList)
        was_picking = bool(self.matches)
        if found != self.matches:
            highlighted = matches.highlighted
            kept = self.matches[highlighted].key if was_picking and highlighted is not None else ""
            self.matches = found
            matches.clear_options()
            matches.add_options(Option(match_line(match)) for match in found)
            keys = [match.key for match in found]
            matches.highlighted = keys.index(kept) if kept in keys else (0 if found else None)
        self.set_class(bool(found), "picking")
        if found and not was_picking:
            self.set_focus(matches)

    @on(OptionList.OptionSelected, "#matches")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        key = self.matches[event.option_index].key
        self.query_one("#query", Input).value = key
        self.query_text = key
        self.reload()

    def action_focus_query(self) -> None:
        """Type another user; in the box, "/" is only a character."""
        query = self.query_one("#query", Input)
        if not type_slash(self, query):
            set_focus_now(self, query)

    def action_back(self) -> None:
        """Leave the search box first, then go back."""
        if self.focused is self.query_one("#query", Input) and len(self.app.screen_stack) == 1:
            self.set_focus(self.query_one("#entra-side"))
            return
        super().action_back()
