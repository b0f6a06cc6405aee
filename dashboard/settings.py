"""Configuration: a TOML file, `SCIMWATCH_*` environment variables and `--profile NAME`.

Precedence, highest first: environment, the selected profile's table in the file, the file's
top level, defaults. Secrets (client secret, certificate password, Harness token) come from the
environment or the OS keyring; a config file may hold one only if it is private (0600).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from dashboard.config_file import APP_NAME as APP_NAME
from dashboard.config_file import CONFIG_ENV as CONFIG_ENV
from dashboard.config_file import (
    DEFAULT_PROFILE,
    SECRET_FIELDS,
    chosen_profile,
    default_cache_path,
    polling_intervals,
)
from dashboard.config_file import PROFILE_ENV as PROFILE_ENV
from dashboard.config_file import ConfigError as ConfigError
from dashboard.config_file import config_file_path as config_file_path
from dashboard.config_file import data_dir as data_dir
from dashboard.config_file import log_dir as log_dir
from dashboard.config_file import profile_values as profile_values
from dashboard.config_file import read_config_file as read_config_file
from store.names import SourceName

KEYRING_SERVICE = "scimwatch"

CloudName = Literal["global", "usgov", "usgov-dod", "china", "custom"]
AuthKind = Literal["client_secret", "certificate", "managed_identity", "azure_cli"]

# graph-api.md 5.5: the authority and Graph hosts of each national cloud.
CLOUD_HOSTS: dict[str, tuple[str, str]] = {
    "global": ("https://login.microsoftonline.com", "https://graph.microsoft.com"),
    "usgov": ("https://login.microsoftonline.us", "https://graph.microsoft.us"),
    "usgov-dod": ("https://login.microsoftonline.us", "https://dod-graph.microsoft.us"),
    "china": (
        "https://login.partner.microsoftonline.cn",
        "https://microsoftgraph.chinacloudapi.cn",
    ),
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class GraphSettings(_Section):
    """Microsoft Entra ID (Microsoft Graph) connection."""

    tenant_id: str = ""
    """Directory (tenant) id of the Entra tenant."""
    client_id: str = ""
    """Application (client) id of the app registration scimwatch signs in as; for
    managed_identity, the Client ID of the user-assigned identity to use."""
    auth_kind: AuthKind = "client_secret"
    """How to get a token: client_secret, certificate, managed_identity (the Azure host's
    identity endpoint) or azure_cli (the account `az login` signed in)."""
    client_secret: SecretStr | None = None
    """Client secret (environment or keyring only, unless the config file is 0600)."""
    certificate_path: Path | None = None
    """For auth_kind = certificate: a PEM file with the private key and the certificate, or a
    PKCS#12 (.pfx) file; its public part must be uploaded to the app registration."""
    certificate_password: SecretStr | None = None
    """Password of the certificate's private key or .pfx, if any (a secret, like client_secret)."""
    cloud: CloudName = "global"
    """global, usgov, usgov-dod, china, or custom (then set login_url and graph_url)."""
    login_url: str = ""
    """Override of the cloud's authority host, e.g. https://login.microsoftonline.us."""
    graph_url: str = ""
    """Override of the cloud's Graph host, e.g. https://graph.microsoft.us."""
    nextgen_sp_id: str = ""
    """Object id of the service principal of the Harness NextGen enterprise app."""
    firstgen_sp_id: str = ""
    """Object id of the FirstGen Harness enterprise app's service principal, if one exists."""

    @field_validator("login_url", "graph_url")
    @classmethod
    def _https_only(cls, url: str) -> str:
        if url and not url.startswith("https://"):
            raise ValueError("must be an https:// URL (TLS verification cannot be turned off)")
        return url.rstrip("/")

    def hosts(self) -> tuple[str, str]:
        """The (authority, graph) base URLs after cloud defaults and overrides."""
        login_default, graph_default = CLOUD_HOSTS.get(self.cloud, ("", ""))
        login, graph = self.login_url or login_default, self.graph_url or graph_default
        if not login or not graph:
            raise ConfigError("graph.cloud = 'custom' needs graph.login_url and graph.graph_url")
        return login, graph


class HarnessSettings(_Section):
    """Harness account connection."""

    account_id: str = ""
    """Harness account id (Account Settings > Overview)."""
    base_url: str = "https://app.harness.io"
    """Your cluster's host (app.harness.io, app3.harness.io, accounts.harness.io,
    accounts.eu.harness.io; SaaS APIs are under /gateway, added for you), or the SCIM Tenant
    URL you gave Entra, pasted whole (the way to configure on-prem, which has no /gateway)."""
    token: SecretStr | None = None
    """Harness API key token, pat.<account>.<id>.<secret> (environment or keyring only)."""

    @field_validator("base_url")
    @classmethod
    def _https_only(cls, url: str) -> str:
        if not url.startswith("https://"):
            raise ValueError("must be an https:// URL (TLS verification cannot be turned off)")
        return url.rstrip("/")


class PollingSettings(_Section):
    """How often each source is polled, in seconds."""

    provisioning_seconds: int = Field(default=120, ge=5)
    """Provisioning logs (Graph allows 5 requests per 10 s per app for reports)."""
    jobs_seconds: int = Field(default=120, ge=5)
    """Provisioning job status."""
    assignments_seconds: int = Field(default=600, ge=5)
    """App role assignments of the NextGen and FirstGen apps."""
    directory_seconds: int = Field(default=900, ge=5)
    """Assigned groups, their members and the users concerned."""
    harness_seconds: int = Field(default=300, ge=5)
    """Harness SCIM, NextGen groups and users, SSO settings and role assignments."""
    overlap_minutes: int = Field(default=15, ge=0)
    """Incremental provisioning-log polls look back this far: late events are not missed."""
    backfill_days: int = Field(default=30, ge=1, le=30)
    """How far the first poll reaches back (Entra keeps provisioning logs 30 days)."""


class WebhookSettings(_Section):
    """One place alerts go."""

    url: SecretStr
    """The incoming-webhook URL: a secret, since it carries the channel's token."""
    format: Literal["teams", "slack", "generic"] = "generic"
    """teams (Adaptive Card for a Teams workflow), slack, or generic JSON."""


class AlertSettings(_Section):
    """Webhook notifications when something changes state."""

    webhooks: list[WebhookSettings] = Field(default_factory=list)
    """Where to send alerts; set in the environment as SCIMWATCH_ALERTS__WEBHOOKS (JSON)."""


class Settings(BaseSettings):
    """All of scimwatch's configuration for one profile."""

    model_config = SettingsConfigDict(
        env_prefix="SCIMWATCH_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    profile: str = DEFAULT_PROFILE
    """The tenant profile these settings are for."""
    graph: GraphSettings = Field(default_factory=GraphSettings)
    harness: HarnessSettings = Field(default_factory=HarnessSettings)
    polling: PollingSettings = Field(default_factory=PollingSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    ca_bundle: Path | None = None
    """Extra CA certificates (PEM) to trust, e.g. a TLS-inspecting proxy's or the simulator's."""
    cache_path: Path | None = None
    """The cache file; defaults to the platform data dir (cache.db, or cache-<profile>.db)."""
    use_keyring: bool = True
    """Look secrets up in the OS keyring when the environment does not set them."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment over init values (the file and profile) over defaults."""
        return (env_settings, init_settings)

    @field_validator("ca_bundle", "cache_path", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # SCIMWATCH_CA_BUNDLE="" means "none", not the current directory.
        return None if value == "" else value

    def resolved_cache_path(self) -> Path:
        """The cache file for this profile."""
        if self.cache_path is not None:
            return self.cache_path.expanduser()
        return default_cache_path(self.profile)

    def secret(self, section: str, name: str) -> SecretStr | None:
        """A secret from the settings (environment or private file), else the OS keyring."""
        value = getattr(getattr(self, section), name)
        if isinstance(value, SecretStr) and value.get_secret_value():
            return value
        if not self.use_keyring:
            return None
        return keyring_secret(self.profile, section, name)


def keyring_secret(profile: str, section: str, name: str) -> SecretStr | None:
    """A secret stored with `keyring set scimwatch <profile>/<section>.<name>`."""
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError:  # pragma: no cover - keyring is a dependency
        return None
    try:
        value = keyring.get_password(KEYRING_SERVICE, f"{profile}/{section}.{name}")
    except (KeyringError, RuntimeError, OSError):
        return None
    return SecretStr(value) if value else None


def load_settings(profile: str | None = None, path: Path | None = None) -> Settings:
    """Settings for a profile from the config file and the environment.

    Raises:
        ConfigError: the file or a value is wrong; the message says what to change.
    """
    from pydantic import ValidationError

    chosen = chosen_profile(profile)
    document = read_config_file(path or config_file_path())
    values = profile_values(document, chosen)
    values["profile"] = chosen
    try:
        return Settings(**values)
    except ValidationError as error:
        raise ConfigError(_explain_validation(error)) from None


def _explain_validation(error: Any) -> str:
    lines = ["invalid configuration:"]
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"])
        # Never echo the input: it may be a secret put in the wrong place.
        lines.append(f"  {where}: {problem['msg']}")
    return "\n".join(lines)


def masked(settings: Settings) -> dict[str, Any]:
    """The settings as a plain dict with every secret replaced by a mask."""
    dumped = settings.model_dump(mode="json")
    for section, name in SECRET_FIELDS:
        value = getattr(getattr(settings, section), name)
        dumped[section][name] = "********" if value is not None else None
    for webhook in dumped["alerts"]["webhooks"]:
        webhook["url"] = "********"
    return dumped


CONFIG_TEMPLATE = """\
# scimwatch configuration. Precedence: environment (SCIMWATCH_SECTION__KEY) > [profiles.NAME]
# (with --profile NAME) > this top level > defaults.
# Secrets do not belong here: set SCIMWATCH_GRAPH__CLIENT_SECRET and SCIMWATCH_HARNESS__TOKEN
# in the environment, or store them in the OS keyring:
#   keyring set scimwatch default/graph.client_secret
#   keyring set scimwatch default/harness.token
# A file that holds a secret anyway must be readable by you alone (chmod 600).

# Extra CA certificates to trust (a TLS-inspecting proxy's). Verification is always on.
# ca_bundle = "/etc/ssl/certs/corp-proxy.pem"
# cache_path = "/var/lib/scimwatch/cache.db"

[graph]
tenant_id = ""        # Entra > Overview > Tenant ID
client_id = ""        # the app registration scimwatch signs in as
auth_kind = "client_secret"   # client_secret | certificate | managed_identity | azure_cli
cloud = "global"      # global | usgov | usgov-dod | china | custom (then login_url, graph_url)
# certificate_path = "/etc/scimwatch/graph.pem"   # key + certificate (PEM), or a .pfx;
#   its password, if any, in SCIMWATCH_GRAPH__CERTIFICATE_PASSWORD or the keyring
# managed_identity: client_id = the user-assigned identity's Client ID
nextgen_sp_id = ""    # Enterprise applications > Harness (NextGen) > Object ID
firstgen_sp_id = ""   # the FirstGen Harness app's Object ID, if one exists

[harness]
account_id = ""
base_url = "https://app.harness.io"   # or app3.harness.io, accounts.harness.io, accounts.eu...

[polling]
provisioning_seconds = 120
jobs_seconds = 120
assignments_seconds = 600
directory_seconds = 900
harness_seconds = 300

# [profiles.staging.graph]
# tenant_id = "..."
"""


def source_intervals(polling: PollingSettings) -> dict[SourceName, timedelta]:
    """How often each source is polled, for freshness (stale = older than twice this)."""
    return polling_intervals(polling.model_dump())
