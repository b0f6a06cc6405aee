"""``SimulatedTenant``: both simulated apps served over real HTTPS on loopback, in a thread.

A throwaway CA from ``trustme`` signs a certificate for 127.0.0.1/localhost, so azure-identity
(which refuses http authorities) and TLS verification run unchanged (graph-api.md section 10).
A third, plain-HTTP server is the managed-identity endpoint an Azure host gives its code (App
Service's IDENTITY_ENDPOINT, or IMDS); like the real ones it speaks http.
Both uvicorn servers run on one event loop in a background thread, so sync and async callers can
use the tenant alike; a background task keeps a scaled clock's cycles running for demos.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import trustme
import uvicorn

from collectors.simulator import ids
from collectors.simulator.clock import Clock
from collectors.simulator.faults import FaultController
from collectors.simulator.graph import GraphApp
from collectors.simulator.harness import HarnessApp
from collectors.simulator.identity import (
    APP_SERVICE_PATH,
    ManagedIdentityApp,
    ManagedIdentityHost,
)
from collectors.simulator.scenario import Scenario, ScenarioName, ScenarioOptions

_START_TIMEOUT = 15.0
_TICK_SECONDS = 0.25


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _server(
    app: Any, cert_path: Path | None = None, key_path: Path | None = None
) -> uvicorn.Server:
    """A quiet uvicorn server for `app`: HTTPS with the given certificate, else plain HTTP."""
    return uvicorn.Server(
        uvicorn.Config(
            app,
            ssl_certfile=str(cert_path) if cert_path else None,
            ssl_keyfile=str(key_path) if key_path else None,
            log_level="critical",
            http="h11",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=1,
            ws="none",
        )
    )


class SimulatedTenant:
    """A simulated Entra + Harness tenant; use as a context manager (starts and stops both apps)."""

    def __init__(
        self,
        scenario: ScenarioName = "incident",
        seed: int = 7,
        speed: float = 1.0,
        clock: Clock | None = None,
        *,
        options: ScenarioOptions | None = None,
        graph_port: int = 0,
        harness_port: int = 0,
    ) -> None:
        self.scenario = Scenario(scenario, seed=seed, clock=clock, speed=speed, options=options)
        self.faults = FaultController()
        self._graph = GraphApp(self.scenario, self.faults)
        self._harness = HarnessApp(self.scenario, self.faults)
        self.identity_host = ManagedIdentityHost(
            system_assigned=ids.guid(seed, "system-assigned-identity"),
            user_assigned={ids.guid(seed, "user-assigned-identity")},
        )
        """The managed identities of the simulated Azure host scimwatch would run on."""
        self.identity = ManagedIdentityApp(self.identity_host, self._graph.issue)
        self._ports = (graph_port, harness_port, 0)
        self._dir: Path | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[uvicorn.Server] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.graph_url = ""
        self.harness_url = ""
        self.identity_url = ""
        self.ca_bundle = Path()

    # ------------------------------------------------------------------ identity of the tenant

    @property
    def tenant_id(self) -> str:
        return self.scenario.tenant_id

    @property
    def client_id(self) -> str:
        return self.scenario.client_id

    @property
    def client_secret(self) -> str:
        return self.scenario.client_secret

    @property
    def harness_token(self) -> str:
        return self.scenario.harness_token

    @property
    def firstgen_api_key(self) -> str:
        return self.scenario.firstgen_api_key

    @property
    def account_id(self) -> str:
        return self.scenario.account_id

    @property
    def nextgen_sp_id(self) -> str:
        return self.scenario.nextgen.sp_id

    @property
    def firstgen_sp_id(self) -> str | None:
        app = self.scenario.firstgen
        return app.sp_id if app else None

    @property
    def managed_identity_client_id(self) -> str:
        """Client id of the host's user-assigned managed identity."""
        return sorted(self.identity_host.user_assigned)[0]

    def managed_identity_env(self) -> dict[str, str]:
        """The variables App Service sets for its managed-identity endpoint, pointing here."""
        return {
            "IDENTITY_ENDPOINT": self.identity_url + APP_SERVICE_PATH,
            "IDENTITY_HEADER": self.identity_host.identity_header,
        }

    def register_certificate(self, pem: bytes) -> None:
        """Upload a certificate (its public part) to the app registration scimwatch uses."""
        self._graph.register_certificate(pem)

    def client_assertions_received(self) -> list[str]:
        """The client assertions (signed JWTs) the login endpoint has received, in order."""
        with self._graph.state.lock:
            return list(self._graph.state.assertions)

    def access_tokens_issued(self) -> list[str]:
        """The access tokens the login endpoint has issued, in order."""
        with self._graph.state.lock:
            return list(self._graph.state.tokens)

    def issue_access_token(self, client_id: str) -> str:
        """An access token from the simulated login for `client_id`, valid on the Graph."""
        return str(self._graph.issue(client_id)["access_token"])

    def env(self) -> dict[str, str]:
        """The SCIMWATCH_* environment variables that point scimwatch at this tenant."""
        env = {
            "SCIMWATCH_GRAPH__TENANT_ID": self.tenant_id,
            "SCIMWATCH_GRAPH__CLIENT_ID": self.client_id,
            "SCIMWATCH_GRAPH__CLIENT_SECRET": self.client_secret,
            "SCIMWATCH_GRAPH__AUTH_KIND": "client_secret",
            "SCIMWATCH_GRAPH__CLOUD": "custom",
            "SCIMWATCH_GRAPH__LOGIN_URL": self.graph_url,
            "SCIMWATCH_GRAPH__GRAPH_URL": self.graph_url,
            "SCIMWATCH_GRAPH__NEXTGEN_SP_ID": self.nextgen_sp_id,
            "SCIMWATCH_HARNESS__ACCOUNT_ID": self.account_id,
            "SCIMWATCH_HARNESS__BASE_URL": self.harness_url,
            "SCIMWATCH_HARNESS__TOKEN": self.harness_token,
            "SCIMWATCH_CA_BUNDLE": str(self.ca_bundle),
        }
        if self.firstgen_sp_id is not None:
            env["SCIMWATCH_GRAPH__FIRSTGEN_SP_ID"] = self.firstgen_sp_id
        return env

    # ------------------------------------------------------------------ lifecycle

    def _write_certificates(self) -> tuple[Path, Path]:
        self._dir = Path(tempfile.mkdtemp(prefix="scimwatch-sim-"))
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_bundle = self._dir / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_bundle))
        cert_path, key_path = self._dir / "server.pem", self._dir / "server.key"
        cert.cert_chain_pems[0].write_to_path(str(cert_path))
        for extra in cert.cert_chain_pems[1:]:
            extra.write_to_path(str(cert_path), append=True)
        cert.private_key_pem.write_to_path(str(key_path))
        return cert_path, key_path

    def start(self) -> SimulatedTenant:
        cert_path, key_path = self._write_certificates()
        sockets = [_bind(port) for port in self._ports]
        ports = [s.getsockname()[1] for s in sockets]
        self.graph_url = f"https://127.0.0.1:{ports[0]}"
        self.harness_url = f"https://127.0.0.1:{ports[1]}"
        self.identity_url = f"http://127.0.0.1:{ports[2]}"
        self._graph.base_url = self.graph_url
        self._servers = [
            _server(self._graph.asgi, cert_path, key_path),
            _server(self._harness.asgi, cert_path, key_path),
            _server(self.identity.asgi),
        ]
        self._thread = threading.Thread(
            target=self._run, args=(sockets,), name="simulated-tenant", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not all(s.started for s in self._servers):
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.stop()
                raise RuntimeError("the simulated tenant did not start")
            time.sleep(0.01)
        return self

    def _run(self, sockets: list[socket.socket]) -> None:
        asyncio.run(self._serve(sockets))

    async def _serve(self, sockets: list[socket.socket]) -> None:
        self._loop = asyncio.get_running_loop()
        ticker = asyncio.create_task(self._tick())
        try:
            await asyncio.gather(
                *(
                    server.serve(sockets=[sock])
                    for server, sock in zip(self._servers, sockets, strict=True)
                )
            )
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            await self._abort_open_connections()

    async def _abort_open_connections(self) -> None:
        """Close the connections a stopped server left open, before the loop closes.

        uvicorn cancels requests still running when its graceful shutdown times out (a client
        stuck on a drip or hang fault, on a busy machine), but leaves their connections open:
        the loop closed under them, and each was reported as an unclosed socket whenever it was
        garbage-collected, in whatever test ran then.
        """
        left = [
            connection.transport
            for server in self._servers
            for connection in list(server.server_state.connections)
            if getattr(connection, "transport", None) is not None
        ]
        for transport in left:
            transport.abort()
        if left:
            await asyncio.sleep(0)  # their connection_lost callbacks run

    async def _tick(self) -> None:
        """Run cycles that fall due on a scaled clock (a manual clock never moves by itself)."""
        while True:
            await asyncio.sleep(_TICK_SECONDS)
            await asyncio.to_thread(self.scenario.sync)

    def stop(self) -> None:
        for server in self._servers:
            server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> SimulatedTenant:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> SimulatedTenant:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)


def describe(tenant: SimulatedTenant) -> list[str]:
    """Human-readable lines: URLs, CA bundle and the environment for scimwatch."""
    lines = [
        f"Simulated tenant: scenario={tenant.scenario.name} seed={tenant.scenario.seed}",
        f"  Graph + login : {tenant.graph_url}",
        f"  Harness       : {tenant.harness_url}",
        f"  Identity (MI) : {tenant.identity_url} (http, App Service and IMDS formats)",
        f"  CA bundle     : {tenant.ca_bundle}",
        "",
        "# Throwaway simulator credentials; export these to point scimwatch at it:",
    ]
    lines += [f"export {name}={value}" for name, value in tenant.env().items()]
    return lines


def run_simulator(
    scenario: ScenarioName = "incident",
    port: int = 0,
    speed: float = 120.0,
    seed: int = 7,
    print_fn: Callable[[str], Any] = print,
) -> None:
    """Serve the simulated tenant (Graph on ``port``, Harness on ``port + 1``) until interrupted.

    With ``speed`` 120 the scenario clock runs 120 times faster: a PT40M cycle every 20 s.
    """
    harness_port = port + 1 if port else 0
    tenant = SimulatedTenant(
        scenario, seed=seed, speed=speed, graph_port=port, harness_port=harness_port
    )
    with tenant:
        for line in describe(tenant):
            print_fn(line)
        interval = timedelta(minutes=40).total_seconds() / speed
        print_fn(f"# one provisioning cycle every {interval:.1f} s of wall time; Ctrl+C to stop")
        stop = threading.Event()
        with contextlib.suppress(KeyboardInterrupt):
            while not stop.wait(1.0):
                pass
