"""Key files: 0600 atomically, refuse readable keys, sender credentials load-or-create."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest

from apckx import keystore
from apckx.crypto import certs, ecdh
from apckx.errors import ConfigError

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_private_key_written_0600_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    key = ecdh.generate_private_key("P256")
    target = tmp_path / "new" / "deeper" / "key.pem"
    old = os.umask(umask)
    try:
        keystore.save_private_key(target, key)
    finally:
        os.umask(old)
    assert _mode(target) == 0o600
    assert _mode(target.parent) == 0o700
    assert _mode(target.parent.parent) == 0o700  # every directory we create
    assert [p.name for p in target.parent.iterdir()] == ["key.pem"]  # no temp file left
    loaded = keystore.load_private_key(target)
    assert loaded.private_numbers() == key.private_numbers()


def test_private_key_with_passphrase(tmp_path: Path) -> None:
    key = ecdh.generate_private_key("P384")
    target = tmp_path / "key.pem"
    keystore.save_private_key(target, key, passphrase=b"s3cret")
    assert b"ENCRYPTED" in target.read_bytes()
    assert keystore.load_private_key(target, passphrase=b"s3cret").private_numbers() == (
        key.private_numbers()
    )
    with pytest.raises(ConfigError, match="wrong passphrase"):
        keystore.load_private_key(target, passphrase=b"nope")


def test_refuses_to_overwrite_a_private_key(tmp_path: Path) -> None:
    target = tmp_path / "key.pem"
    keystore.save_private_key(target, ecdh.generate_private_key("P256"))
    before = target.read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        keystore.save_private_key(target, ecdh.generate_private_key("P256"))
    assert target.read_bytes() == before
    keystore.save_private_key(target, ecdh.generate_private_key("P256"), overwrite=True)
    assert target.read_bytes() != before
    assert _mode(target) == 0o600


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_load_refuses_readable_key_file(tmp_path: Path, mode: int) -> None:
    target = tmp_path / "key.pem"
    keystore.save_private_key(target, ecdh.generate_private_key("P256"))
    target.chmod(mode)
    expected = rf"readable by others \(mode 0{mode:o}\): run chmod 600"
    with pytest.raises(ConfigError, match=expected):
        keystore.load_private_key(target)


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        keystore.load_private_key(tmp_path / "nope.pem")
    with pytest.raises(ConfigError, match="does not exist"):
        keystore.load_certificate(tmp_path / "nope.pem")
    (tmp_path / "junk.pem").write_text("junk")
    with pytest.raises(ConfigError, match=r"not a PEM certificate|no certificate"):
        keystore.load_certificate(tmp_path / "junk.pem")


def test_certificate_round_trip(tmp_path: Path) -> None:
    _, cert = certs.new_sender_ca("P256", now=NOW)
    target = tmp_path / "ca.pem"
    keystore.save_certificate(target, cert)
    assert _mode(target) == 0o644
    assert keystore.load_certificate(target) == cert


def test_sender_credentials_created_then_loaded(tmp_path: Path) -> None:
    certs_dir = tmp_path / "certs"
    created, was_created = keystore.load_or_create_sender_credentials(certs_dir, "P-521", now=NOW)
    assert was_created
    assert created.curve == "P521"
    # Only the CA is kept: the ECDH leaf is fresh per ceremony and never written.
    assert sorted(p.name for p in certs_dir.iterdir()) == [
        "sender_ca_cert.pem",
        "sender_ca_key.pem",
    ]
    assert _mode(certs_dir) == 0o700
    assert _mode(certs_dir / "sender_ca_key.pem") == 0o600
    loaded, was_created = keystore.load_or_create_sender_credentials(certs_dir, "P521", now=NOW)
    assert not was_created
    assert loaded.ca_cert == created.ca_cert
    assert loaded.leaf_cert != created.leaf_cert
    assert loaded.leaf_key.private_numbers() != created.leaf_key.private_numbers()
    for creds in (created, loaded):
        certs.verify_apc_chain(creds.leaf_cert, creds.ca_cert, expected_curve="P521", now=NOW)
    assert sorted(p.name for p in certs_dir.iterdir()) == [
        "sender_ca_cert.pem",
        "sender_ca_key.pem",
    ]


def test_sender_credentials_on_another_curve(tmp_path: Path) -> None:
    keystore.load_or_create_sender_credentials(tmp_path, "P256", now=NOW)
    with pytest.raises(ConfigError, match="on P256, not P384"):
        keystore.load_or_create_sender_credentials(tmp_path, "P384", now=NOW)


def test_sender_credentials_partial(tmp_path: Path) -> None:
    keystore.load_or_create_sender_credentials(tmp_path, "P256", now=NOW)
    (tmp_path / "sender_ca_cert.pem").unlink()
    with pytest.raises(ConfigError, match=r"missing sender_ca_cert\.pem"):
        keystore.load_or_create_sender_credentials(tmp_path, "P256", now=NOW)


def test_a_leaf_only_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "sender_key.pem").write_text("x")
    with pytest.raises(ConfigError, match="no sender CA"):
        keystore.load_or_create_sender_credentials(tmp_path, "P256", now=NOW)


def test_sender_leaf_is_issued_for_the_moment_of_use(tmp_path: Path) -> None:
    first, _ = keystore.load_or_create_sender_credentials(tmp_path, "P256", now=NOW)
    later = NOW + dt.timedelta(days=400)
    renewed, was_created = keystore.load_or_create_sender_credentials(tmp_path, "P256", now=later)
    assert not was_created  # same CA: nothing to re-import into APC
    assert renewed.ca_cert == first.ca_cert
    certs.verify_certificate(renewed.leaf_cert, renewed.ca_cert, now=later)


def test_sender_ca_key_not_matching_certificate(tmp_path: Path) -> None:
    keystore.load_or_create_sender_credentials(tmp_path, "P256", now=NOW)
    (tmp_path / "sender_ca_key.pem").unlink()
    keystore.save_private_key(tmp_path / "sender_ca_key.pem", ecdh.generate_private_key("P256"))
    with pytest.raises(ConfigError, match="does not match its certificate"):
        keystore.load_or_create_sender_credentials(tmp_path, "P256", now=NOW)
