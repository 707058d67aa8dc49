"""The pytest plugin: the ``apc_emulator`` fixture and the client it builds, isolated from
the environment of the machine running the tests."""

from __future__ import annotations

import os
from typing import Any

import pytest

from apckx.emulator.pytest_plugin import EmulatorFixture, make_emulator_client

pytest_plugins = ["pytester"]


def test_fixture_gives_url_and_a_ready_client(apc_emulator: EmulatorFixture) -> None:
    assert apc_emulator.url.startswith("http://127.0.0.1:")
    assert apc_emulator.client.meta.endpoint_url == apc_emulator.url
    assert apc_emulator.client.meta.region_name == "us-east-1"
    assert apc_emulator.client.meta.config.retries["mode"] == "standard"
    apc_emulator.client.create_alias(AliasName="alias/fresh")
    assert len(apc_emulator.client.list_aliases()["Aliases"]) == 1


def test_each_test_gets_a_fresh_emulator(apc_emulator: EmulatorFixture) -> None:
    assert apc_emulator.client.list_aliases()["Aliases"] == []  # nothing from the last test


def test_the_client_ignores_the_callers_aws_environment(
    apc_emulator: EmulatorFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: os.PathLike[str]
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.path.join(tmp_path, "absent-config"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONG")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "wrong-token")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ENDPOINT_URL_PAYMENT_CRYPTOGRAPHY", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    client = make_emulator_client(apc_emulator.url)
    assert client.meta.region_name == "us-east-1"
    assert client.list_keys()["Keys"] == []


def test_the_fixture_changes_no_environment_variable(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os

        def environment():
            return {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}

        BEFORE = environment()

        def test_uses_fixture(apc_emulator):
            assert apc_emulator.client.list_keys()["Keys"] == []
            assert environment() == BEFORE

        def test_after():
            assert environment() == BEFORE
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_factory_starts_configured_emulators_and_stops_them(apc_emulator_factory: Any) -> None:
    from apckx.emulator.server import EmulatorConfig

    first = apc_emulator_factory(EmulatorConfig(account_id="123456789012"))
    second = apc_emulator_factory()
    assert first.url != second.url
    client = make_emulator_client(first.url)
    client.create_alias(AliasName="alias/a")
    assert make_emulator_client(second.url).list_aliases()["Aliases"] == []
    arn = client.create_key(
        KeyAttributes={
            "KeyUsage": "TR31_K0_KEY_ENCRYPTION_KEY",
            "KeyClass": "SYMMETRIC_KEY",
            "KeyAlgorithm": "AES_256",
            "KeyModesOfUse": {"Encrypt": True, "Decrypt": True, "Wrap": True, "Unwrap": True},
        },
        Exportable=True,
    )["Key"]["KeyArn"]
    assert ":123456789012:" in arn
