"""The simulated Harness's SCIM user listing: each page an offset into the users as they are."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from collectors.simulator import FaultController, ManualClock, Scenario
from collectors.simulator.harness import HarnessApp
from collectors.simulator.harness_state import HarnessState
from collectors.simulator.model import HarnessUser, LazyTable

AT = datetime(2025, 1, 2, tzinfo=UTC)


def harness_search(state: HarnessState, skip: int, count: int) -> list[str]:
    """harness-api.md 1.4 written plainly: imported users in order, skip, limit (before NG)."""
    everyone = [*state.users.values(), *state.fg_users.values()]
    return [user.uuid for user in [u for u in everyone if u.imported][skip : skip + count]]


def listed(state: HarnessState, skip: int, count: int) -> list[str]:
    """What NextGen answers for that page: the search without the non-members."""
    return [
        user.email
        for uuid in harness_search(state, skip, count)
        if (user := state.users.get(uuid) or state.fg_users[uuid]).ng_member
    ]


async def users_page(client: httpx.AsyncClient, scenario: Scenario, **params: Any) -> list[str]:
    response = await client.get(
        f"/gateway/ng/api/scim/account/{scenario.account_id}/Users",
        params=params,
        headers={"Authorization": f"Bearer {scenario.harness_token}"},
    )
    body = response.json()
    assert response.status_code == 200
    assert body["totalResults"] == len(body["Resources"])  # Harness: the page's size
    assert (body["startIndex"], body["itemsPerPage"]) == (params["startIndex"], params["count"])
    return [user["userName"] for user in body["Resources"]]


def email_of(state: HarnessState, email: str) -> str:
    user = state.find_user_by_email(email)
    assert user is not None
    return user.uuid


async def test_pages_follow_the_users_as_they_change_between_requests():
    scenario = Scenario("incident", seed=7, clock=ManualClock())
    state = scenario.harness
    transport = httpx.ASGITransport(HarnessApp(scenario, FaultController()).asgi)
    async with httpx.AsyncClient(transport=transport, base_url="https://harness.test") as client:
        first = await users_page(client, scenario, startIndex=1, count=4)
        assert first == listed(state, 0, 4)
        assert first == [f"{n}@example.com" for n in ("peggy", "grace", "trent", "carol")]
        # A listed user leaves: everyone after moves up one, so judy slips past the client.
        state.remove_user(email_of(state, "grace@example.com"))
        second = await users_page(client, scenario, startIndex=5, count=4)
        assert second == listed(state, 4, 4)
        assert second == [f"{n}@example.com" for n in ("victor", "user1", "user_2", "frank")]
        # SCIM creates a user (listed last) and takes over the native one (listed where it is).
        state.scim_create_user("zed@example.com", "Zed", "Zed", "Zed", "x-zed", AT)
        state.scim_create_user("ops-admin@example.com", "Ops", "Ops", "Admin", "x-ops", AT)
        third = await users_page(client, scenario, startIndex=9, count=4)
        assert third == listed(state, 8, 4)
        assert third == [f"{n}@example.com" for n in ("frank", "olivia", "alice", "heidi")]
        assert await users_page(client, scenario, startIndex=1, count=1) == [
            "ops-admin@example.com"
        ]
        last = await users_page(client, scenario, startIndex=13, count=4)
        assert last == [f"{n}@example.com" for n in ("dave", "rupert", "erin", "zed")]
        # FirstGen's users come after and are never listed: the pages past the end are empty.
        assert await users_page(client, scenario, startIndex=17, count=4) == []


def test_a_page_straddling_into_firstgen_users_follows_their_changes():
    state = Scenario("incident", seed=7, clock=ManualClock()).harness
    imported = len(harness_search(state, 0, 10_000)) - len(state.fg_users)
    for skip in (imported - 2, imported + 3):
        assert [u.uuid for u in state.scim_page(skip, 5)] == harness_search(state, skip, 5)
    state.fg_users.pop(next(iter(state.fg_users)))
    state.fg_create_user("new-fg@example.com", "New", "New", "Fg", AT)
    for skip in (imported - 2, imported + 3, imported + 100):
        assert [u.uuid for u in state.scim_page(skip, 5)] == harness_search(state, skip, 5)


def computed_users(count: int) -> tuple[HarnessState, list[int]]:
    """An account of `count` users computed on demand (as ``large``'s), and who was built."""
    built: list[int] = []

    def make(index: int) -> HarnessUser:
        built.append(index)
        return HarnessUser(f"hu-{index}", f"user{index}@example.com", f"User {index}", "U", "N")

    def index_of(uuid: str) -> int | None:
        number = uuid.removeprefix("hu-")
        return int(number) if number.isdigit() else None

    users = LazyTable(make, count, index_of)
    return HarnessState(seed=7, account_id="acct", users=users), built


def every_page(state: HarnessState, count: int = 3) -> list[HarnessUser]:
    listed: list[HarnessUser] = []
    while page := state.scim_page(len(listed), count):
        listed += page
    return listed


def test_a_full_listing_builds_each_user_once_until_a_user_changes():
    """A page is a slice of one listing, not a walk rebuilding every user it skips."""
    state, built = computed_users(300)
    assert [user.uuid for user in every_page(state)] == [f"hu-{i}" for i in range(300)]
    assert sorted(built) == list(range(300))
    built.clear()
    state.scim_update_user("hu-150", "Renamed", AT)
    listed = every_page(state)
    assert [user.name for user in listed[149:152]] == ["User 149", "Renamed", "User 151"]
    assert sorted(built) == list(range(300))  # the changed user read, the others built again


def test_a_native_user_taken_over_by_scim_is_listed_at_once():
    state = Scenario("incident", seed=7, clock=ManualClock()).harness
    assert "ops-admin@example.com" not in {user.email for user in state.scim_page(0, 100)}
    state.scim_create_user("ops-admin@example.com", "Ops", "Ops", "Admin", "x-ops", AT)
    assert [user.email for user in state.scim_page(0, 1)] == ["ops-admin@example.com"]


def imported_now(state: HarnessState) -> list[HarnessUser]:
    """Every imported user read from the tables afresh, in listing order (nothing kept)."""
    return [user for user in [*state.users.values(), *state.fg_users.values()] if user.imported]


def change_one_user(state: HarnessState, change: str) -> None:
    peggy = state.find_user_by_email("peggy@example.com")
    assert peggy is not None
    if change == "rename":
        state.scim_update_user(peggy.uuid, "Peggy P", AT)
    elif change == "deactivate":
        state.scim_deactivate_user(peggy.uuid)
    elif change == "take over a native user":
        state.scim_create_user("ops-admin@example.com", "Ops", "Ops", "Admin", "x-ops", AT)
    elif change == "create":
        state.scim_create_user("zed@example.com", "Zed", "Zed", "Zed", "x-zed", AT)
    else:  # straight into the table, past every SCIM operation
        state.users.put(peggy.uuid, peggy._replace(imported=False))


@pytest.mark.parametrize(
    "change", ["rename", "deactivate", "take over a native user", "create", "put in the table"]
)
def test_the_listing_after_a_change_shows_the_users_as_they_are_now(change):
    """The listing kept between pages follows every change, whichever way it was made."""
    state = Scenario("incident", seed=7, clock=ManualClock()).harness
    before = every_page(state, count=5)
    assert before == imported_now(state)
    change_one_user(state, change)
    after = every_page(state, count=5)
    assert after != before
    assert after == imported_now(state)


def test_a_user_cannot_be_changed_behind_the_listings_back():
    """A user changes only by a new one put into the table, the change the listing follows."""
    user = Scenario("incident", seed=7, clock=ManualClock()).harness.scim_page(0, 1)[0]
    with pytest.raises(AttributeError):
        user.imported = False  # type: ignore[misc]
