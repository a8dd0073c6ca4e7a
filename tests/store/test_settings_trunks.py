"""Server-wide settings (parsing, validation, storage) and trunks."""

from __future__ import annotations

import pytest

from onenumber.settings import DEFAULT_TRUSTED_NETWORKS, Settings, Trunk, validate_setting
from onenumber.store import AdminError, ConflictError, NotFoundError, Store


def test_defaults_and_from_rows() -> None:
    assert Settings.from_rows({}) == Settings()
    assert Settings().trusted_networks == DEFAULT_TRUSTED_NETWORKS
    settings = Settings.from_rows(
        {
            "domain": "pbx.example.com",
            "trusted_networks": "127.0.0.1/32,10.0.0.0/8",
            "digest_algorithms": "SHA-256,MD5",
            "min_expires": "30",
            "unknown": "ignored",
            "max_expires": "not a number",  # a bad stored value falls back to the default
        }
    )
    assert settings.domain == "pbx.example.com"
    assert settings.trusted_networks == ("127.0.0.1/32", "10.0.0.0/8")
    assert settings.digest_algorithms == ("SHA-256", "MD5")
    assert settings.min_expires == 30
    assert settings.max_expires == 3600
    assert Settings.from_rows(settings.to_rows()) == settings


@pytest.mark.parametrize(
    ("key", "value", "stored"),
    [
        ("domain", " PBX.Example.com. ", "pbx.example.com"),
        ("domain", "", ""),
        ("domain", "192.0.2.7", "192.0.2.7"),
        ("trusted_networks", "127.0.0.1, 10.1.2.3/8", "127.0.0.1/32,10.0.0.0/8"),
        ("trusted_networks", "::1", "::1/128"),
        ("digest_algorithms", "md5", "MD5"),
        ("digest_algorithms", "sha-256, md5", "SHA-256,MD5"),
        ("min_expires", " 120 ", "120"),
        ("auth_block_seconds", "0", "0"),
        ("md5_only_user_agents", " baresip v1. , OldPhone ", "baresip v1.,OldPhone"),
        ("md5_only_user_agents", "", ""),
    ],
)
def test_validate_setting(key: str, value: str, stored: str) -> None:
    assert validate_setting(key, value) == stored


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("colour", "blue", "unknown setting 'colour'; known settings: domain, trusted_networks"),
        ("domain", "bad host!", "not a host name or IP address"),
        ("trusted_networks", "10.0.0.0/8,nonsense", "'nonsense' is not a network; give CIDRs"),
        ("digest_algorithms", "SHA-512", "unknown algorithm 'SHA-512'"),
        ("digest_algorithms", "", "needs at least one"),
        ("digest_algorithms", "MD5,md5", "each algorithm may appear once"),
        ("min_expires", "ten", "must be a whole number"),
        ("max_expires", "0", "must be between 1 and"),
        ("md5_only_user_agents", "ab", "substrings of 3\\+ characters"),
    ],
)
def test_validate_setting_errors(key: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_setting(key, value)


async def test_set_and_get_settings(store: Store) -> None:
    admin = store.admin
    assert await admin.get_settings() == Settings()
    await admin.set_setting("trusted_networks", "127.0.0.1/32,10.0.0.0/8")
    await admin.set_setting("domain", "pbx.example.com")
    await admin.set_setting("domain", "other.example.com")  # overwrite
    settings = await admin.get_settings()
    assert settings.trusted_networks == ("127.0.0.1/32", "10.0.0.0/8")
    assert settings.domain == "other.example.com"
    assert (await store.snapshot()).settings == settings
    reset = await admin.reset_setting("domain")
    assert reset.domain is None


async def test_setting_errors_change_nothing(store: Store) -> None:
    admin = store.admin
    revision = await store.revision()
    with pytest.raises(AdminError, match="is not a network"):
        await admin.set_setting("trusted_networks", "everyone")
    with pytest.raises(AdminError, match=r"min_expires <= default_expires <= max_expires"):
        await admin.set_setting("min_expires", "7200")
    assert await admin.get_settings() == Settings()
    assert await store.revision() == revision


async def test_trunks(store: Store) -> None:
    admin = store.admin
    assert await admin.add_trunk("gw", "192.0.2.10", prefix="0") == Trunk("gw", "192.0.2.10", 5060, "udp", "0")
    await admin.add_trunk("carrier", "sip.carrier.example", port=5080, transport="TCP")
    assert await admin.list_trunks() == [
        Trunk("carrier", "sip.carrier.example", 5080, "tcp", ""),
        Trunk("gw", "192.0.2.10", 5060, "udp", "0"),
    ]
    assert (await store.snapshot()).trunks == tuple(await admin.list_trunks())
    with pytest.raises(ConflictError, match="trunk gw already exists"):
        await admin.add_trunk("gw", "192.0.2.11")
    await admin.remove_trunk("gw")
    with pytest.raises(NotFoundError, match="no trunk named 'gw'; existing trunks: carrier"):
        await admin.remove_trunk("gw")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "bad name", "host": "h"}, "trunk name 'bad name' is not valid"),
        ({"name": "gw", "host": "not a host"}, "is not a host name or IP address"),
        ({"name": "gw", "host": "h", "port": 0}, "trunk port must be between 1 and 65535"),
        ({"name": "gw", "host": "h", "transport": "sctp"}, "trunk transport 'sctp' is not known"),
        ({"name": "gw", "host": "h", "prefix": "0a"}, "trunk prefix '0a' is not valid"),
    ],
)
async def test_trunk_validation(store: Store, kwargs: dict, message: str) -> None:
    kwargs = dict(kwargs)  # the parameter dict is shared by the SQLite and PostgreSQL runs
    name, host = kwargs.pop("name"), kwargs.pop("host")
    with pytest.raises(AdminError, match=message):
        await store.admin.add_trunk(name, host, **kwargs)
