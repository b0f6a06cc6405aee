"""Configuration: file, environment and profile precedence; secrets stay secret."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dashboard.settings import (
    CONFIG_TEMPLATE,
    ConfigError,
    config_file_path,
    load_settings,
    masked,
)


def write_config(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture
def config_file(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "cfg" / "config.toml"
    monkeypatch.setenv("SCIMWATCH_CONFIG", str(path))
    return path


def test_config_file_is_in_the_platform_config_dir_unless_overridden(monkeypatch, tmp_path):
    assert config_file_path() == Path(os.environ["XDG_CONFIG_HOME"]) / "scimwatch/config.toml"
    monkeypatch.setenv("SCIMWATCH_CONFIG", str(tmp_path / "x.toml"))
    assert config_file_path() == tmp_path / "x.toml"


def test_no_config_file_gives_defaults():
    settings = load_settings()
    assert settings.profile == "default"
    assert settings.harness.base_url == "https://app.harness.io"
    assert settings.graph.hosts() == (
        "https://login.microsoftonline.com",
        "https://graph.microsoft.com",
    )
    assert settings.resolved_cache_path().name == "cache.db"


def test_environment_overrides_profile_overrides_file(config_file, monkeypatch):
    write_config(
        config_file,
        '[graph]\ntenant_id = "file"\nclient_id = "file-client"\n'
        '[profiles.staging.graph]\ntenant_id = "staging"\nnextgen_sp_id = "sp-staging"\n',
    )
    assert load_settings().graph.tenant_id == "file"
    staging = load_settings("staging")
    assert (staging.graph.tenant_id, staging.graph.client_id) == ("staging", "file-client")
    assert staging.resolved_cache_path().name == "cache-staging.db"
    monkeypatch.setenv("SCIMWATCH_GRAPH__TENANT_ID", "env")
    assert load_settings("staging").graph.tenant_id == "env"
    assert load_settings("staging").graph.nextgen_sp_id == "sp-staging"


def test_profile_can_come_from_the_environment(config_file, monkeypatch):
    write_config(config_file, '[profiles.prod.harness]\naccount_id = "acct-prod"\n')
    monkeypatch.setenv("SCIMWATCH_PROFILE", "prod")
    assert load_settings().harness.account_id == "acct-prod"


def test_unknown_profile_names_the_known_ones(config_file):
    write_config(config_file, '[profiles.prod.harness]\naccount_id = "x"\n')
    with pytest.raises(ConfigError, match=r"no profile 'qa'.*prod"):
        load_settings("qa")


def test_secret_in_world_readable_config_file_is_refused(config_file):
    write_config(config_file, '[harness]\ntoken = "pat.acct.id.hunter2"\n', mode=0o644)
    with pytest.raises(ConfigError) as refused:
        load_settings()
    message = str(refused.value)
    assert "chmod 600" in message
    assert "harness.token" in message
    assert "hunter2" not in message


def test_secret_in_a_profile_of_a_shared_file_is_refused_too(config_file):
    write_config(config_file, '[profiles.prod.graph]\nclient_secret = "s3cr3t"\n', mode=0o640)
    with pytest.raises(ConfigError, match=r"graph\.client_secret"):
        load_settings()


def test_secret_in_private_config_file_is_accepted(config_file):
    write_config(config_file, '[harness]\ntoken = "pat.acct.id.hunter2"\n', mode=0o600)
    token = load_settings().harness.token
    assert token is not None
    assert token.get_secret_value() == "pat.acct.id.hunter2"


def test_secrets_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("SCIMWATCH_GRAPH__CLIENT_SECRET", "from-env")
    settings = load_settings()
    secret = settings.secret("graph", "client_secret")
    assert secret is not None
    assert secret.get_secret_value() == "from-env"
    assert "from-env" not in repr(settings)


def test_secrets_come_from_the_os_keyring(monkeypatch):
    import keyring
    from keyring.backend import KeyringBackend

    class MemoryKeyring(KeyringBackend):
        priority = 1

        def get_password(self, service, username):
            return {("scimwatch", "default/harness.token"): "from-keyring"}.get((service, username))

        def set_password(self, service, username, password):
            raise NotImplementedError

        def delete_password(self, service, username):
            raise NotImplementedError

    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    try:
        settings = load_settings()
        token = settings.secret("harness", "token")
        assert token is not None
        assert token.get_secret_value() == "from-keyring"
        assert settings.secret("graph", "client_secret") is None
    finally:
        keyring.set_keyring(previous)


def test_a_keyring_without_backend_yields_no_secret():
    assert load_settings().secret("harness", "token") is None


def test_masked_settings_never_show_a_secret(monkeypatch):
    monkeypatch.setenv("SCIMWATCH_GRAPH__CLIENT_SECRET", "very-secret-value")
    monkeypatch.setenv("SCIMWATCH_HARNESS__TOKEN", "pat.a.b.c")
    shown = masked(load_settings())
    assert shown["graph"]["client_secret"] == "********"
    assert shown["harness"]["token"] == "********"
    assert shown["graph"]["certificate_password"] is None
    assert "very-secret-value" not in str(shown)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SCIMWATCH_HARNESS__BASE_URL", "http://app.harness.io"),
        ("SCIMWATCH_GRAPH__LOGIN_URL", "http://127.0.0.1:8443"),
    ],
)
def test_plain_http_endpoints_are_refused(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match="https"):
        load_settings()


def test_validation_errors_never_echo_the_value(config_file):
    write_config(config_file, '[graph]\nauth_kind = "hunter2-secret-in-wrong-place"\n')
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert "graph.auth_kind" in str(refused.value)
    assert "hunter2" not in str(refused.value)


def test_unknown_keys_are_reported(config_file):
    write_config(config_file, '[graph]\ntennant_id = "typo"\n')
    with pytest.raises(ConfigError, match=r"graph\.tennant_id"):
        load_settings()


def test_custom_cloud_needs_both_hosts(monkeypatch):
    monkeypatch.setenv("SCIMWATCH_GRAPH__CLOUD", "custom")
    monkeypatch.setenv("SCIMWATCH_GRAPH__LOGIN_URL", "https://127.0.0.1:9443/")
    with pytest.raises(ConfigError, match="graph_url"):
        load_settings().graph.hosts()
    monkeypatch.setenv("SCIMWATCH_GRAPH__GRAPH_URL", "https://127.0.0.1:9443")
    assert load_settings().graph.hosts() == ("https://127.0.0.1:9443", "https://127.0.0.1:9443")


def test_national_cloud_hosts():
    from dashboard.settings import GraphSettings

    assert GraphSettings(cloud="usgov").hosts() == (
        "https://login.microsoftonline.us",
        "https://graph.microsoft.us",
    )


def test_invalid_toml_is_a_clear_error(config_file):
    write_config(config_file, "[graph\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings()


def test_the_template_is_a_valid_config(config_file):
    write_config(config_file, CONFIG_TEMPLATE)
    assert load_settings().polling.provisioning_seconds == 120


def test_webhooks_come_from_the_environment_and_are_masked(monkeypatch):
    monkeypatch.setenv(
        "SCIMWATCH_ALERTS__WEBHOOKS",
        '[{"url": "https://hooks.example.com/T0/SECRET", "format": "slack"}]',
    )
    settings = load_settings()
    (webhook,) = settings.alerts.webhooks
    assert webhook.format == "slack"
    assert webhook.url.get_secret_value().endswith("/SECRET")
    assert "SECRET" not in str(masked(settings))


def test_webhooks_in_a_shared_config_file_are_refused(config_file):
    write_config(
        config_file, '[[alerts.webhooks]]\nurl = "https://hooks.example.com/x"\n', mode=0o644
    )
    with pytest.raises(ConfigError, match=r"alerts\.webhooks"):
        load_settings()


def test_an_empty_ca_bundle_means_none(monkeypatch):
    monkeypatch.setenv("SCIMWATCH_CA_BUNDLE", "")
    assert load_settings().ca_bundle is None


@pytest.mark.parametrize(
    ("graph", "connects"),
    [
        ({"auth_kind": "client_secret", "tenant_id": "t", "client_id": "c"}, True),
        ({"auth_kind": "client_secret", "tenant_id": "t"}, False),
        ({"auth_kind": "certificate", "tenant_id": "t", "certificate_path": "/x.pem"}, False),
        # The host's system-assigned identity: no client id to give.
        ({"auth_kind": "managed_identity", "tenant_id": "t"}, True),
        ({"auth_kind": "managed_identity", "client_id": "c"}, False),
        # Whoever ran `az login`: neither id is needed to sign in.
        ({"auth_kind": "azure_cli"}, True),
    ],
)
def test_each_auth_kind_needs_only_the_ids_it_signs_in_with(graph, connects, tmp_path):
    from dashboard.launch import graph_connection, is_configured
    from dashboard.settings import Settings

    settings = Settings(
        graph={**graph, "nextgen_sp_id": "sp"}, cache_path=tmp_path / "c.db", use_keyring=False
    )
    connection = graph_connection(settings)
    assert (connection is not None) is connects
    assert is_configured(settings) is connects
    if connection is not None:
        assert connection.auth_kind == graph["auth_kind"]
        assert connection.client_id == graph.get("client_id", "")
