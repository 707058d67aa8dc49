"""Private keys, certificates and output directories on a shared host (issue 13 item 6).

The private key is opened once (``O_NOFOLLOW``), checked on the descriptor and read from it:
the TOCTOU loop swaps a world-readable key in under the same name while loads run, and not a
single load may return it (a stat-then-open-by-name load did, 11% of the time). Files and
directories other users own or can write are refused.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from apckx import keystore
from apckx.ceremonies.export_key import check_block_destination, check_components_destination
from apckx.crypto import ecdh
from apckx.errors import ConfigError

LOADS = 400
SWAPPER = """
import os, sys, time
good, bad, target, stop = sys.argv[1:]
tmp = target + ".swap"
open(os.path.join(os.path.dirname(target), "swapping"), "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(stop) and time.monotonic() < deadline:
    for source in (bad, good):
        os.link(source, tmp)
        os.replace(tmp, target)
"""
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def test_toctou_swap_never_returns_the_world_readable_key(tmp_path: Path) -> None:
    good_key, bad_key = ecdh.generate_private_key("P256"), ecdh.generate_private_key("P256")
    good, bad, target = tmp_path / "good.pem", tmp_path / "bad.pem", tmp_path / "key.pem"
    keystore.save_private_key(good, good_key)
    keystore.save_private_key(bad, bad_key)
    os.chmod(bad, 0o644)
    os.link(good, target)
    # The swapper is another process (true parallelism, no GIL in between): the name flips
    # between the 0600 key and the 0644 one (rename is atomic: the name always exists) until
    # the loads are done, for at most 60 s.
    swapper = subprocess.Popen(
        [sys.executable, "-c", SWAPPER, str(good), str(bad), str(target), str(tmp_path / "stop")]
    )
    loaded = refused = 0
    try:
        while not (tmp_path / "swapping").exists():
            time.sleep(0.01)
        for _ in range(LOADS):
            try:
                key = keystore.load_private_key(target)
            except ConfigError as exc:
                assert "readable by others" in str(exc)
                refused += 1
                continue
            assert key.private_numbers() == good_key.private_numbers(), "swapped key returned"
            loaded += 1
    finally:
        (tmp_path / "stop").touch()
        swapper.wait(timeout=30)
    assert loaded + refused == LOADS
    assert loaded > 0  # the loop really loaded


def test_a_symlinked_private_key_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real.pem"
    keystore.save_private_key(real, ecdh.generate_private_key("P256"))
    link = tmp_path / "link.pem"
    link.symlink_to(real)
    with pytest.raises(ConfigError, match="symbolic link"):
        keystore.load_private_key(link)


@pytest.mark.skipif(not IS_ROOT, reason="chown to another user needs root")
def test_a_foreign_owned_private_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    keystore.save_private_key(path, ecdh.generate_private_key("P256"))
    os.chown(path, 12345, 12345)
    # root owns everything it may read; simulate a normal user by checking the owner rule
    # against a different effective uid.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "geteuid", lambda: 23456)
        with pytest.raises(ConfigError, match="belongs to another user"):
            keystore.load_private_key(path)


def test_a_group_writable_certificate_is_refused(tmp_path: Path) -> None:
    keystore.load_or_create_sender_credentials(tmp_path / "certs", "P256")
    os.chmod(tmp_path / "certs" / "sender_ca_cert.pem", 0o664)
    with pytest.raises(ConfigError, match="can be written by other users"):
        keystore.load_or_create_sender_credentials(tmp_path / "certs", "P256")


def test_a_world_writable_certs_dir_is_refused(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    keystore.load_or_create_sender_credentials(certs, "P256")
    os.chmod(certs, 0o777)  # noqa: S103 - the point of the test
    with pytest.raises(ConfigError, match=r"certs directory .* can be written by other users"):
        keystore.load_or_create_sender_credentials(certs, "P256")


def test_a_world_writable_components_dir_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    os.chmod(out, 0o777)  # noqa: S103 - the point of the test
    with pytest.raises(ConfigError, match=r"--out-dir .* can be written by other users"):
        check_components_destination(out)


def test_a_world_writable_block_dir_warns(tmp_path: Path) -> None:
    out = tmp_path / "shared"
    out.mkdir()
    os.chmod(out, 0o1777)  # noqa: S103 - the point of the test
    warnings = check_block_destination(out / "block.tr31")
    assert warnings and "other users" in warnings[0]
    private = tmp_path / "mine"
    private.mkdir(mode=0o700)
    assert check_block_destination(private / "block.tr31") == []
