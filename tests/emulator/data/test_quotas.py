"""Per-plane rate limits: --rate-limit's forms, and separate buckets for the control plane,
the symmetric data plane and the asymmetric data plane."""

from __future__ import annotations

import argparse
import os

import pytest

from apckx._cli import main
from apckx.cli import emulator as emulator_cli
from apckx.emulator.quotas import RateLimits, parse_plane_rates
from apckx.emulator.server import EmulatorConfig

from .conftest import start_data_plane


def config_for(*options: str) -> EmulatorConfig:
    parser = argparse.ArgumentParser()
    emulator_cli.add_arguments(parser)
    return emulator_cli.build_config(parser.parse_args(["serve", *options]))


@pytest.mark.parametrize(("text", "expected"), [
    ("apc", RateLimits(5, 500, 20)),
    ("APC", RateLimits(5, 500, 20)),
    ("data=500", RateLimits(None, 500, None)),
    ("control=2.5, asymmetric=20", RateLimits(2.5, None, 20)),
])
def test_plane_rates(text: str, expected: RateLimits) -> None:
    assert parse_plane_rates(text) == expected


def test_cli_maps_every_form_to_the_config() -> None:
    config = config_for("--rate-limit", "7")
    assert (config.rate_limit, config.data_rate_limit, config.asymmetric_rate_limit) == (
        7, None, None)
    config = config_for("--rate-limit", "apc")
    assert (config.rate_limit, config.data_rate_limit, config.asymmetric_rate_limit) == (
        5, 500, 20)
    assert config_for().data_rate_limit is None  # off by default


@pytest.mark.parametrize(("value", "message"), [
    ("data=0", "data must be a number greater than 0"),
    ("data=fast", "data must be a number greater than 0"),
    ("symmetric=5", "PLANE one of control, data, asymmetric"),
    ("data=5,data=6", "data is given twice"),
])
def test_bad_plane_rates_are_one_line_errors_exit_2(
        value: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulator", "serve", "--rate-limit", value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_symmetric_and_asymmetric_buckets_are_apart() -> None:
    plane = start_data_plane(EmulatorConfig(data_rate_limit=1, asymmetric_rate_limit=1))
    try:
        d0 = plane.import_key(os.urandom(16), "TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY",
                              "AES_128", "B")
        attributes = {"Symmetric": {"Mode": "ECB"}}
        plane.data.encrypt_data(KeyIdentifier=d0, PlainText="00" * 16,
                                EncryptionAttributes=attributes)
        with pytest.raises(plane.data.exceptions.ThrottlingException,
                           match="symmetric data-plane"):
            plane.data.encrypt_data(KeyIdentifier=d0, PlainText="00" * 16,
                                    EncryptionAttributes=attributes)
        outgoing = {"Tr31KeyBlock": {"WrappingKeyIdentifier": plane.ensure_kek()}}

        def translate() -> None:
            member = plane.ecdh_block(os.urandom(16), "TR31_P0_PIN_ENCRYPTION_KEY", "AES_128")
            plane.data.translate_key_material(
                IncomingKeyMaterial={"DiffieHellmanTr31KeyBlock": member},
                OutgoingKeyMaterial=outgoing)

        translate()  # ECDH: the asymmetric bucket, still full
        with pytest.raises(plane.data.exceptions.ThrottlingException,
                           match="asymmetric data-plane"):
            translate()
    finally:
        plane.emulator.stop()
