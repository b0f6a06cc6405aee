"""What the collectors need to know, filled in by the CLI from settings, and the factory.

Collectors never read settings themselves (STYLE.md B7): `dashboard/cli.py` builds these plain
models and calls `build_collectors`, which creates the HTTP clients and every collector.
"""

from __future__ import annotations

import inspect
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import certifi
import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

from collectors.base import Collector, register_secret

if TYPE_CHECKING:
    from collectors.http import HttpPolicy
from store.models import AppName, SourceName

AuthKind = Literal["client_secret", "certificate", "managed_identity", "azure_cli"]


class GraphConnection(BaseModel):
    """How to reach Microsoft Graph for one Entra tenant."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str
    client_id: str
    auth_kind: AuthKind = "client_secret"
    client_secret: SecretStr | None = None
    certificate_path: Path | None = None
    certificate_password: SecretStr | None = None
    login_url: str = "https://login.microsoftonline.com"
    """The Entra authority host of the cloud (reference/graph-api.md section 5.5)."""
    graph_url: str = "https://graph.microsoft.com"
    """The Graph service root of the cloud, without the version segment."""
    nextgen_sp_id: str
    """Object id of the service principal of the Harness NextGen enterprise app."""
    firstgen_sp_id: str | None = None
    """Object id of the FirstGen app's service principal, when there is one."""
    ca_bundle: Path | None = None
    """Extra trust anchors (PEM), e.g. a TLS-inspecting proxy's CA; certifi's otherwise."""

    def register_secrets(self) -> None:
        """Have `redact` remove the client secret and certificate password wherever they appear."""
        for secret in (self.client_secret, self.certificate_password):
            if secret is not None:
                register_secret(secret.get_secret_value())

    @property
    def apps(self) -> dict[AppName, str]:
        """Service principal object id per configured app."""
        apps: dict[AppName, str] = {"nextgen": self.nextgen_sp_id}
        if self.firstgen_sp_id:
            apps["firstgen"] = self.firstgen_sp_id
        return apps

    @property
    def api_root(self) -> str:
        """The Graph v1.0 root every request is relative to."""
        return self.graph_url.rstrip("/") + "/v1.0"

    @property
    def scope(self) -> str:
        """The .default scope of this cloud's Graph (national clouds use their own host)."""
        return self.graph_url.rstrip("/") + "/.default"


class HarnessConnection(BaseModel):
    """How to reach one Harness account.

    `base_url` is the cluster host (``https://app.harness.io``, which gets ``/gateway``), an API
    root with a path, or a SCIM tenant URL pasted from Entra; see `harness_endpoints`.
    """

    model_config = ConfigDict(frozen=True)

    account_id: str
    base_url: str = "https://app.harness.io/gateway"
    token: SecretStr
    ca_bundle: Path | None = None

    @property
    def endpoints(self) -> HarnessEndpoints:
        """The SCIM, NextGen and access-control roots derived from `base_url`."""
        return harness_endpoints(self.base_url, self.account_id)


@dataclass(frozen=True)
class HarnessEndpoints:
    """Where each Harness API lives (reference/harness-api.md sections 1.1, 3.1, 8.2)."""

    gateway: str
    scim: str
    ng: str
    authz: str
    firstgen_scim: bool
    """The configured URL was a FirstGen SCIM URL (``/gateway/api/scim/...``)."""


_NO_GATEWAY_HOSTS = {"accounts.eu.harness.io"}
"""SaaS hosts whose APIs are not under /gateway (reference/harness-api.md 1.1)."""


def harness_endpoints(base_url: str, account_id: str) -> HarnessEndpoints:
    """Split a configured Harness URL into the API roots scimwatch uses.

    A bare host gets the ``/gateway`` prefix Harness SaaS uses (except the EU cluster); a URL
    with a path is the API root as it is. A SCIM tenant URL is reduced to the part before
    ``/ng/api/scim`` (or FirstGen's ``/api/scim``), which is also how on-prem installs, whose
    APIs have no gateway prefix, are configured.
    """
    url = base_url.rstrip("/")
    firstgen = False
    for marker in ("/ng/api/scim/account/", "/api/scim/account/"):
        if marker in url:
            firstgen = marker == "/api/scim/account/"
            url = url.split(marker, 1)[0]
            break
    else:
        parts = urlsplit(url)
        if parts.path in ("", "/") and (parts.hostname or "") not in _NO_GATEWAY_HOSTS:
            url = f"{parts.scheme}://{parts.netloc}/gateway"
    return HarnessEndpoints(
        gateway=url,
        scim=f"{url}/ng/api/scim/account/{account_id}",
        ng=f"{url}/ng/api",
        authz=f"{url}/authz/api",
        firstgen_scim=firstgen,
    )


def origin_of(url: str) -> str:
    """``scheme://host:port`` of a URL, lower-cased, with the default port made explicit."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


@dataclass(frozen=True)
class PollingConfig:
    """How often each source is polled, and how the provisioning log is walked."""

    intervals: Mapping[SourceName, timedelta] = field(
        default_factory=lambda: {
            "graph.provisioning": timedelta(seconds=60),
            "graph.jobs": timedelta(seconds=60),
            "graph.assignments": timedelta(minutes=5),
            "graph.directory": timedelta(minutes=5),
            "harness.scim": timedelta(minutes=5),
            "harness.ng": timedelta(minutes=5),
            "harness.sso": timedelta(minutes=5),
            "harness.roles": timedelta(minutes=5),
        }
    )
    retention: timedelta = timedelta(days=30)
    """How far back the first run backfills (Entra keeps 30 days with P1/P2)."""
    overlap: timedelta = timedelta(minutes=15)
    """Re-read window before the watermark for late-arriving events (graph-api.md U5)."""
    backfill_window: timedelta = timedelta(days=1)
    """One backfill step; each step is saved on its own so a crash resumes."""
    page_size: int = 500
    """$top for provisioning-log pages (Microsoft's own example uses 500; graph-api.md U1)."""
    max_backoff: timedelta = timedelta(minutes=30)
    """Longest wait before retrying a source that keeps failing."""
    request_deadline: float = 60.0
    """Seconds one HTTP request may take in total, however slowly bytes arrive."""

    def interval(self, source: SourceName) -> timedelta:
        """The poll interval of `source` (five minutes when not configured)."""
        return self.intervals.get(source, timedelta(minutes=5))


COLLECTOR_TIMEOUT = httpx.Timeout(30.0, connect=15.0)
"""Each read, write and pool wait of a collector's request; connecting gets 15 s."""


def ssl_context(ca_bundle: Path | None) -> ssl.SSLContext:
    """A verifying TLS context: certifi's roots, plus the configured bundle when given.

    There is deliberately no way to turn verification off (reference/reliability.md 3.4).
    """
    context = ssl.create_default_context(cafile=certifi.where())
    if ca_bundle is not None:
        context.load_verify_locations(cafile=str(ca_bundle))
    return context


@dataclass
class CollectorSet:
    """The collectors `build_collectors` made, and the clients to close after use."""

    collectors: list[Collector]
    clients: list[httpx.AsyncClient]
    closers: list[Callable[[], object]] = field(default_factory=list)

    async def aclose(self) -> None:
        """Close every HTTP client and credential."""
        for client in self.clients:
            await client.aclose()
        for closer in self.closers:
            result = closer()
            if inspect.isawaitable(result):
                await result


def build_collectors(
    graph: GraphConnection | None,
    harness: HarnessConnection | None,
    polling: PollingConfig | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    reporting_rate: tuple[int, float] = (5, 10.5),
    policy: HttpPolicy | None = None,
) -> CollectorSet:
    """Create the HTTP clients and every collector for the configured services.

    Args:
        graph: the Entra tenant, or None to collect Harness only.
        harness: the Harness account, or None to collect Entra only.
        polling: intervals and provisioning-log windows; defaults otherwise.
        clock: the UTC clock (tests inject one).
        transport: an httpx transport to use instead of the network (tests only).
        reporting_rate: requests per seconds for Graph's reporting API (5 per 10 s per app,
            graph-api.md 6.2, paced at 5 per 10.5 s: the service counts arrivals, which trail
            our sends by a variable delay); only a test against an unlimited simulator changes it.
        policy: retry/deadline/size limits; defaults from `polling.request_deadline`.

    Returns:
        The collectors and the clients; close them with `CollectorSet.aclose`.
    """
    from collectors import graph as graph_collectors
    from collectors import harness as harness_collectors
    from collectors.auth import HarnessAuth, make_graph_auth
    from collectors.http import ApiClient, HttpPolicy, RateLimiter, utc_now

    polling = polling or PollingConfig()
    now = clock or utc_now
    collectors: list[Collector] = []
    built = CollectorSet(collectors=collectors, clients=[])
    policy = policy or HttpPolicy(deadline=polling.request_deadline)
    if graph is not None:
        graph.register_secrets()
        auth = make_graph_auth(graph)
        built.closers.append(auth.aclose)
        client = make_client(graph.ca_bundle, auth, transport)
        built.clients.append(client)
        # Reporting APIs: 5 requests / 10 s per app per tenant (graph-api.md 6.2); pace at it.
        reports = ApiClient(
            client, service="graph", policy=policy, limiter=RateLimiter(*reporting_rate, policy)
        )
        directory = ApiClient(
            client, service="graph", policy=policy, limiter=RateLimiter(50, 10.0, policy)
        )
        collectors += graph_collectors.make_graph_collectors(
            graph, reports=reports, directory=directory, polling=polling, clock=now
        )
    if harness is not None:
        register_secret(harness.token.get_secret_value())
        endpoints = harness.endpoints
        auth_h = HarnessAuth(harness.token, allowed_origin=origin_of(endpoints.gateway))
        client = make_client(harness.ca_bundle, auth_h, transport)
        built.clients.append(client)
        # Harness: 400 external API calls per minute per key, no Retry-After (harness-api.md 3.6).
        api = ApiClient(
            client, service="harness", policy=policy, limiter=RateLimiter(300, 60.0, policy)
        )
        collectors += harness_collectors.make_harness_collectors(harness, api=api, clock=now)
    return built


def make_client(
    ca_bundle: Path | None,
    auth: httpx.Auth | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    *,
    timeout: httpx.Timeout = COLLECTOR_TIMEOUT,
) -> httpx.AsyncClient:
    """A client for one service: TLS verified by `ssl_context`, redirects never followed.

    A `transport` (tests, an in-process simulator) stands in for the network, its TLS and timeouts.
    Without `auth` (webhooks), requests carry no credentials.
    """
    if transport is not None:
        return httpx.AsyncClient(auth=auth, transport=transport, follow_redirects=False)
    return httpx.AsyncClient(
        auth=auth, verify=ssl_context(ca_bundle), follow_redirects=False, timeout=timeout
    )
