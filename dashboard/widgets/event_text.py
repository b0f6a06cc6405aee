"""One provisioning event as readable text: identity, outcome, error, steps, modified properties.

Used by the events screen's detail pane and by the event detail modal. Every API value goes
through `clean`; the text is assembled from Rich `Text` pieces, never from markup.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rich.text import Text

from dashboard.timefmt import stamp
from dashboard.widgets.safe_text import clean
from store.models import ProvisioningEvent
from store.playbook import parse_service_message

STATUS_STYLES = {
    "failure": "bold red",
    "warning": "yellow",
    "skipped": "dim",
    "success": "green",
}

MAX_LISTED = 50
"""Most steps or properties listed; the rest are counted."""


def status_text(status: str) -> Text:
    """A status word, coloured by what it means."""
    return Text(clean(status, 20), style=STATUS_STYLES.get(status.lower(), ""))


def _line(text: Text, label: str, value: object, limit: int = 300, style: str = "") -> None:
    text.append(f"{label}: ", style="bold")
    text.append(clean(value, limit), style=style)
    text.append("\n")


def _items(value: object) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def _append_listed(text: Text, items: list[Mapping[str, Any]], heading: str) -> Iterable[Any]:
    if not items:
        return []
    text.append(f"\n{heading}\n", style="bold underline")
    if len(items) > MAX_LISTED:
        text.append(f"  (first {MAX_LISTED} of {len(items)})\n", style="dim")
    return items[:MAX_LISTED]


def _append_steps(text: Text, detail: Mapping[str, Any]) -> None:
    steps = _items(detail.get("steps", detail.get("provisioningSteps")))
    for number, step in enumerate(_append_listed(text, steps, "Steps"), start=1):
        text.append(f"  {number}. {clean(step.get('name'), 60)}  ")
        text.append_text(status_text(str(step.get("status") or "")))
        description = clean(step.get("description"), 500)
        text.append(f"\n     {description}\n" if description else "\n")


def _append_properties(text: Text, detail: Mapping[str, Any]) -> None:
    properties = _items(detail.get("modifiedProperties"))
    for prop in _append_listed(text, properties, "Modified properties"):
        text.append(f"  {clean(prop.get('displayName'), 80)}: ", style="bold")
        text.append(clean(prop.get("oldValue"), 200), style="red")
        text.append(" → ")
        text.append(clean(prop.get("newValue"), 200), style="green")
        text.append("\n")


def _append_mapping(text: Text, detail: Mapping[str, Any], key: str, heading: str) -> None:
    value = detail.get(key)
    if not isinstance(value, Mapping) or not value:
        return
    text.append(f"\n{heading}\n", style="bold underline")
    for number, (name, item) in enumerate(value.items()):
        if number >= MAX_LISTED:
            text.append(f"  … {len(value) - MAX_LISTED} more\n", style="dim")
            break
        text.append(f"  {clean(name, 80)}: {clean(item, 300)}\n")


def event_text(event: ProvisioningEvent, detail: Mapping[str, Any]) -> Text:
    """Everything about one event, for a detail pane."""
    text = Text(end="")
    text.append(clean(event.source_name, 200) or "(no name)", style="bold")
    text.append(f"  {clean(event.source_type, 20)} {clean(event.source_id, 80)}\n", style="dim")
    text.append(f"{clean(event.action, 30)} · ")
    text.append_text(status_text(event.status))
    text.append(f" · {stamp(event.activity_at)} UTC · cycle {clean(event.cycle_id, 60)}\n")
    _line(text, "Event id", event.id, 120)
    _line(text, "Harness target", event.target_id or "(none)", 120)
    if event.error_code or event.reason:
        _line(text, "Error", f"{event.error_code} ({event.error_category})", 200, "bold red")
        if said := parse_service_message(event.reason):  # the line an admin needs, first
            _line(text, "Harness says", said, 400)
        _line(text, "Reason", event.reason, 2000)
    if event.recommended_action:
        _line(text, "Recommended", event.recommended_action, 1000)
    _append_steps(text, detail)
    _append_properties(text, detail)
    _append_mapping(text, detail, "additionalDetails", "Additional details")
    return text
