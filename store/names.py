"""The closed sets every layer names: services, sources, apps.

Plain `Literal`s and a tuple, no pydantic: the TUI's first frame (`store.overview`) uses them
before pydantic is imported. `store.models` imports them for the records.
"""

from __future__ import annotations

from typing import Literal, get_args

ServiceName = Literal["graph", "harness"]
"""The two services scimwatch talks to; a source belongs to one of them."""

SourceName = Literal[
    "graph.provisioning",
    "graph.jobs",
    "graph.assignments",
    "graph.directory",
    "harness.scim",
    "harness.ng",
    "harness.sso",
    "harness.roles",
]
"""One collector's data feed; freshness and poll runs are kept per source."""

SOURCES: tuple[SourceName, ...] = get_args(SourceName)
"""Every source, in the order screens list them."""

AppName = Literal["nextgen", "firstgen"]
"""Which Entra enterprise app (Harness integration) an assignment or job belongs to."""


def service_of(source: SourceName) -> ServiceName:
    """The service a source belongs to."""
    return "graph" if source.startswith("graph.") else "harness"
