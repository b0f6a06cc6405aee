"""The config file and the environment as plain data, and what the TUI's first frame needs.

`dashboard.settings` (pydantic-settings) is the one source of truth for the configuration.
Importing it and building its models costs more CPU than the TUI's whole first frame, so
`first_paint_settings` decides from the same inputs (environment, profile, TOML file) only
what that frame needs: the cache, the polling intervals its freshness is judged by, whether
anything is configured. It answers only for inputs it reads exactly as the full load does
(anything else: None, and the caller loads the settings first); the TUI loads the full
settings right after its first frame and checks they agree.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import platformdirs

from store.names import SourceName

APP_NAME = "scimwatch"
DEFAULT_PROFILE = "default"
CONFIG_ENV = "SCIMWATCH_CONFIG"
PROFILE_ENV = "SCIMWATCH_PROFILE"
ENV_PREFIX = "scimwatch_"
"""Settings' environment variables (matched whatever their case, as pydantic-settings does)."""

SECRET_FIELDS: tuple[tuple[str, str], ...] = (
    ("graph", "client_secret"),
    ("graph", "certificate_password"),
    ("harness", "token"),
)
"""(section, field) of every secret setting."""

AUTH_KINDS = ("client_secret", "certificate", "managed_identity", "azure_cli")
"""How scimwatch can sign in to Entra (`dashboard.settings.AuthKind`)."""


class ConfigError(Exception):
    """The configuration cannot be used as it is; the message says what to change."""


def config_file_path() -> Path:
    """Where the config file is: `$SCIMWATCH_CONFIG`, else the platform's config dir."""
    override = os.environ.get(CONFIG_ENV)
    if override:
        return Path(override).expanduser()
    return platformdirs.user_config_path(APP_NAME, appauthor=False) / "config.toml"


def data_dir() -> Path:
    """Where caches live by default."""
    return platformdirs.user_data_path(APP_NAME, appauthor=False)


def log_dir() -> Path:
    """Where the headless collector writes its log by default."""
    return platformdirs.user_log_path(APP_NAME, appauthor=False)


def default_cache_path(profile: str) -> Path:
    """The cache of a profile when the settings name none."""
    return data_dir() / ("cache.db" if profile == DEFAULT_PROFILE else f"cache-{profile}.db")


def read_config_file(path: Path) -> dict[str, Any]:
    """The parsed TOML file, or {} when there is none; refuses secrets in a shared file."""
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from error
    try:
        document = tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from error
    _refuse_shared_secrets(path, document)
    return document


def _refuse_shared_secrets(path: Path, document: dict[str, Any]) -> None:
    holders = [document, *document.get("profiles", {}).values()]
    found = [
        f"{section}.{name}"
        for holder in holders
        if isinstance(holder, dict)
        for section, name in SECRET_FIELDS
        if isinstance(holder.get(section), dict) and name in holder[section]
    ]
    found += [
        "alerts.webhooks"
        for holder in holders
        if isinstance(holder, dict)
        and isinstance(holder.get("alerts"), dict)
        and holder["alerts"].get("webhooks")
    ]
    if not found:
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"{path} holds a secret ({', '.join(sorted(set(found)))}) but is readable by "
            f"others (mode {mode:04o}). Run `chmod 600 {path}`, or better, move the secret to "
            "the environment (SCIMWATCH_GRAPH__CLIENT_SECRET, SCIMWATCH_HARNESS__TOKEN) "
            "or the OS keyring."
        )


def profile_values(document: dict[str, Any], profile: str) -> dict[str, Any]:
    """The file's top level with the profile's table merged over it."""
    base = {key: value for key, value in document.items() if key != "profiles"}
    if profile == DEFAULT_PROFILE:
        return base
    profiles = document.get("profiles", {})
    if profile not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise ConfigError(f"no profile {profile!r} in the config file (profiles: {known})")
    return _deep_merge(base, profiles[profile])


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def chosen_profile(profile: str | None) -> str:
    """The profile `--profile` names, else `$SCIMWATCH_PROFILE`, else the default one."""
    return profile or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE


# --- The first frame's settings ------------------------------------------------------------

POLLING_LIMITS: dict[str, tuple[int, int | None]] = {
    "provisioning_seconds": (5, None),
    "jobs_seconds": (5, None),
    "assignments_seconds": (5, None),
    "directory_seconds": (5, None),
    "harness_seconds": (5, None),
    "overlap_minutes": (0, None),
    "backfill_days": (1, 30),
}
"""Each polling setting's bounds (`dashboard.settings.PollingSettings`)."""

POLLING_DEFAULTS: dict[str, int] = {
    "provisioning_seconds": 120,
    "jobs_seconds": 120,
    "assignments_seconds": 600,
    "directory_seconds": 900,
    "harness_seconds": 300,
    "overlap_minutes": 15,
    "backfill_days": 30,
}
"""Each polling setting's default (`dashboard.settings.PollingSettings`)."""

_SECTIONS = {
    "graph": {
        "tenant_id",
        "client_id",
        "auth_kind",
        "client_secret",
        "certificate_path",
        "certificate_password",
        "cloud",
        "login_url",
        "graph_url",
        "nextgen_sp_id",
        "firstgen_sp_id",
    },
    "harness": {"account_id", "base_url", "token"},
    "polling": set(POLLING_DEFAULTS),
    "alerts": {"webhooks"},
}
"""The settings' sections and their fields (`dashboard.settings`): other keys are refused."""
_TOP_LEVEL = {"profile", "ca_bundle", "cache_path", "use_keyring", *_SECTIONS}
_READ_HERE = {
    "cache_path",
    "profile",
    *(f"polling__{name}" for name in POLLING_DEFAULTS),
    "graph__tenant_id",
    "graph__client_id",
    "graph__auth_kind",
    "graph__nextgen_sp_id",
    "harness__account_id",
}
"""Environment variables (after the prefix) this module reads as the full load does."""
_WHOLE_SECTIONS = set(_SECTIONS)
"""`SCIMWATCH_POLLING` etc.: a section as JSON, which only the full load reads."""
_DIGITS = re.compile(r"0|[1-9][0-9]{0,8}")


@dataclass(frozen=True)
class FirstPaintSettings:
    """What the TUI's first frame needs from the configuration."""

    profile: str
    """The profile chosen (`--profile`, `$SCIMWATCH_PROFILE`, or the default)."""
    cache_path: Path
    """`Settings.resolved_cache_path()`."""
    polling_seconds: Mapping[str, int]
    """`Settings.polling`, field by field."""
    configured: bool
    """`dashboard.launch.is_configured(settings)`: some service can be polled."""


def first_paint_settings(profile: str | None) -> FirstPaintSettings | None:
    """The first frame's settings, or None when only the full load can tell (or refuse) them.

    None for a config file that cannot be read or has a key the settings do not have, for an
    environment variable setting a whole section as JSON or given twice in two cases, and for
    a value of the first frame's settings the full load would read differently or refuse.
    """
    chosen = chosen_profile(profile)
    env = _settings_environment()
    if env is None or env.get("profile", chosen) != chosen:
        return None  # the environment's profile wins over --profile in the full load
    try:
        values = profile_values(read_config_file(config_file_path()), chosen)
    except ConfigError:
        return None
    if not _known_keys(values):
        return None
    try:
        return _first_paint_values(chosen, values, env)
    except _FullLoadOnly:
        return None


def _settings_environment() -> dict[str, str] | None:
    """`SCIMWATCH_*` variables by lowercased name after the prefix; None if one is unread."""
    found: dict[str, str] = {}
    for name, value in os.environ.items():
        lowered = name.lower()
        if not lowered.startswith(ENV_PREFIX):
            continue
        key = lowered.removeprefix(ENV_PREFIX)
        if key in found or key in _WHOLE_SECTIONS:
            return None
        found[key] = value
    return found


def _known_keys(values: Mapping[str, Any]) -> bool:
    for key, value in values.items():
        if key not in _TOP_LEVEL:
            return False
        if key in _SECTIONS and not (isinstance(value, dict) and set(value) <= _SECTIONS[key]):
            return False
    return True


class _FullLoadOnly(Exception):
    """A value only the full load reads (or refuses) as it should."""


def _first_paint_values(
    profile: str, values: Mapping[str, Any], env: Mapping[str, str]
) -> FirstPaintSettings:
    cache_path = _path(env["cache_path"] if "cache_path" in env else values.get("cache_path"))
    polling = values.get("polling", {})
    seconds = {
        name: _integer(env.get(f"polling__{name}", polling.get(name, default)), *limits)
        for (name, default), limits in zip(
            POLLING_DEFAULTS.items(), POLLING_LIMITS.values(), strict=True
        )
    }
    identity = {
        f"{section}.{name}": _text(env.get(f"{section}__{name}", values.get(section, {}).get(name)))
        for section, name in (
            ("graph", "tenant_id"),
            ("graph", "client_id"),
            ("graph", "nextgen_sp_id"),
            ("harness", "account_id"),
        )
    }
    kind = env.get("graph__auth_kind", values.get("graph", {}).get("auth_kind", "client_secret"))
    if kind not in AUTH_KINDS:
        raise _FullLoadOnly
    return FirstPaintSettings(
        profile=profile,
        cache_path=cache_path or default_cache_path(profile),
        polling_seconds=seconds,
        configured=_configured(kind, identity),
    )


def _path(raw: object) -> Path | None:
    """A path setting as the full load reads it: None when unset or empty."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise _FullLoadOnly
    return Path(raw).expanduser()


def _integer(raw: object, low: int, high: int | None) -> int:
    """A whole number within bounds, from TOML or the environment."""
    if isinstance(raw, str) and _DIGITS.fullmatch(raw):
        number = int(raw)
    elif isinstance(raw, int) and not isinstance(raw, bool):
        number = raw
    else:
        raise _FullLoadOnly
    if number < low or (high is not None and number > high):
        raise _FullLoadOnly
    return number


def _text(raw: object) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise _FullLoadOnly
    return raw


def _configured(kind: str, identity: Mapping[str, str]) -> bool:
    """`dashboard.launch.is_configured`, on the identity settings."""
    tenant, client = identity["graph.tenant_id"], identity["graph.client_id"]
    if kind == "azure_cli":
        identified = True
    elif kind == "managed_identity":
        identified = bool(tenant)
    else:
        identified = bool(tenant and client)
    return bool((identified and identity["graph.nextgen_sp_id"]) or identity["harness.account_id"])


def polling_intervals(polling_seconds: Mapping[str, int]) -> dict[SourceName, timedelta]:
    """How often each source is polled, for freshness (stale = older than twice this)."""
    seconds: dict[SourceName, int] = {
        "graph.provisioning": polling_seconds["provisioning_seconds"],
        "graph.jobs": polling_seconds["jobs_seconds"],
        "graph.assignments": polling_seconds["assignments_seconds"],
        "graph.directory": polling_seconds["directory_seconds"],
        "harness.scim": polling_seconds["harness_seconds"],
        "harness.ng": polling_seconds["harness_seconds"],
        "harness.sso": polling_seconds["harness_seconds"],
        "harness.roles": polling_seconds["harness_seconds"],
    }
    return {source: timedelta(seconds=value) for source, value in seconds.items()}
