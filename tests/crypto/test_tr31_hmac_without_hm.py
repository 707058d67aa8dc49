"""An 'H' (HMAC) key block without an HM optional block (issue 12): valid X9.143, and what
openemv's tr31 tool (psec) writes and reads. apckx unwraps and inspects it; only an import
into APC, which needs the hash, refuses it (before any call)."""

from __future__ import annotations

import pytest
from psec import tr31 as psec_tr31

from apckx.ceremonies.import_key import describe_key_block
from apckx.cli.tr31 import describe_header
from apckx.crypto.tr31 import header_to_key_attributes, inspect_key_block, unwrap_key_block
from apckx.errors import KeyBlockError

KBPK = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C2B7E151628AED2A6ABF7158809CF4F3C")
KEY = bytes(range(1, 33))


@pytest.fixture(scope="module")
def block() -> str:
    text = psec_tr31.wrap(KBPK, "D0000M7HC00N0000", KEY)
    assert psec_tr31.unwrap(KBPK, text)[1] == KEY  # psec (openemv's tr31) accepts it
    return str(text)


def test_unwrap_reads_it(block: str) -> None:
    header, key = unwrap_key_block(KBPK, block, kbpk_algorithm="AES_256")
    assert key == KEY
    assert (header.key_usage, header.algorithm, header.block("HM")) == ("M7", "H", None)


def test_inspect_reads_it(block: str) -> None:
    assert inspect_key_block(block).algorithm == "H"
    info = describe_header(block)
    assert info["algorithm"] == "H" and info["key_usage"] == "M7"


def test_import_refuses_it_as_apc_would(block: str) -> None:
    with pytest.raises(KeyBlockError, match="HM optional block"):
        describe_key_block(block)
    header, key = unwrap_key_block(KBPK, block, kbpk_algorithm="AES_256")
    with pytest.raises(KeyBlockError, match="HM optional block"):
        header_to_key_attributes(header, len(key))


def test_a_tampered_block_still_fails_integrity(block: str) -> None:
    from apckx.errors import IntegrityError

    tampered = block[:-1] + ("0" if block[-1] != "0" else "1")
    with pytest.raises(IntegrityError):
        unwrap_key_block(KBPK, tampered, kbpk_algorithm="AES_256")
