"""Synthetic provisioning events of the shape Graph returns, for the store benchmarks.

Deterministic (seeded), generated lazily: a tenant of `users` identities syncing in 40-minute
cycles, about 3% failures with realistic reason text and step details. Each event is of a
random identity, which keeps its name (`user<N>@contoso.example`, N its index) and its Harness
id from event to event, as Entra's do (a failed create has no Harness id yet).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from store.detail import pack_detail
from store.models import ProvisioningEvent

START = datetime(2026, 10, 29, tzinfo=UTC)
JOB_ID = "scim.4f1c2a9e8b7d4c3a9e1f2b3c4d5e6f70.9b8c7d6e-5f4a-3b2c-1d0e-f9a8b7c6d5e4"
SP_ID = "9b8c7d6e-5f4a-3b2c-1d0e-f9a8b7c6d5e4"
REASON = (
    "Failed to create User '{name}' in Harness; Error code: SystemForCrossDomainIdentity"
    "ManagementServiceIncompatible. The SCIM endpoint responded with StatusCode: 409 Conflict."
    " This operation was retried 0 times. It will be retried again after this date: "
    "{retry}Z UTC"
)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def events(count: int, users: int = 20_000, seed: int = 7) -> Iterator[ProvisioningEvent]:
    """`count` events, oldest first, spread over cycles of `users // 10` changes."""
    rng = random.Random(seed)
    user_ids = [_uuid(rng) for _ in range(users)]
    target_ids = [f"{rng.getrandbits(128):x}"[:22] for _ in range(users)]
    per_cycle = max(users // 10, 1)
    cycle_id = _uuid(rng)
    for index in range(count):
        if index % per_cycle == 0:
            cycle_id = _uuid(rng)
        at = START + timedelta(
            minutes=40 * (index // per_cycle), milliseconds=index % per_cycle * 37
        )
        number = rng.randrange(users)
        failed = rng.random() < 0.03
        name = f"user{number}@contoso.example"
        yield ProvisioningEvent(
            id=_uuid(rng),
            activity_at=at,
            job_id=JOB_ID,
            cycle_id=cycle_id,
            change_id=_uuid(rng),
            service_principal_id=SP_ID,
            action=rng.choice(("create", "update", "update", "update", "disable")),
            status="failure" if failed else rng.choice(("success", "success", "skipped")),
            source_id=user_ids[number],
            source_type="User",
            source_name=name,
            target_id="" if failed else target_ids[number],
            error_code="SystemForCrossDomainIdentityManagementServiceIncompatible"
            if failed
            else "",
            error_category="failure" if failed else "",
            reason=REASON.format(name=name, retry=(at + timedelta(minutes=40)).isoformat()[:19])
            if failed
            else "",
            recommended_action="Check the SCIM endpoint" if failed else "",
            duration_ms=rng.randrange(50, 3000),
            initiated_by="Azure AD Provisioning Service",
            detail=pack_detail(
                {
                    "provisioningSteps": [
                        {
                            "name": "EntryImportAdd",
                            "provisioningStepType": "import",
                            "status": "success",
                            "description": f"Received User '{name}' change of type (Add) from Azure Active Directory",
                        },
                        {
                            "name": "EntrySynchronizationScoping",
                            "provisioningStepType": "scoping",
                            "status": "success",
                            "description": "Determine if User in scope by evaluating against each scoping filter",
                            "details": {
                                "Active in the source system": "True",
                                "Assigned to the application": "True",
                                "User has the required role": "True",
                                "Scoping filter evaluation passed": "True",
                            },
                        },
                        {
                            "name": "EntryExportAdd",
                            "provisioningStepType": "export",
                            "status": "failure" if failed else "success",
                            "description": f"User '{name}' was created in Harness",
                        },
                    ],
                    "modifiedProperties": [
                        {"displayName": "accountEnabled", "oldValue": None, "newValue": "True"},
                        {"displayName": "userPrincipalName", "oldValue": None, "newValue": name},
                        {
                            "displayName": "displayName",
                            "oldValue": None,
                            "newValue": name.split("@")[0],
                        },
                    ],
                }
            ),
        )
