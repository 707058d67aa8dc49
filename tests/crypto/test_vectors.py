"""Published test vectors, byte for byte: TR-31 wrap/unwrap and KDFs, ECDH, KCVs.

The vectors live in tests/vectors/*.json (copied from ../shared/vectors); each entry is a
test case, parametrized at collection with the entry's id.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from apckx.crypto import ecdh, kcv, kdf, tr31

VECTORS_DIR = Path(__file__).resolve().parents[1] / "vectors"
SHARED_VECTORS_DIR = Path(__file__).resolve().parents[3] / "shared" / "vectors"


def load_vectors(name: str) -> list[dict[str, Any]]:
    with (VECTORS_DIR / name).open(encoding="utf-8") as handle:
        entries: list[dict[str, Any]] = json.load(handle)
    return entries


def cases(name: str, keep: Any = None) -> Any:
    entries = [e for e in load_vectors(name) if keep is None or keep(e)]
    return pytest.mark.parametrize("entry", entries, ids=[e["id"] for e in entries])


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# --- TR-31 / X9.143 ---------------------------------------------------------------------------


@cases("tr31_wrap_unwrap.json")
def test_tr31_unwrap(entry: dict[str, Any]) -> None:
    header, key = tr31.unwrap_key_block(h(entry["kbpk"]), entry["key_block"])
    assert key == h(entry["key"])
    assert header.raw == entry["header"]
    assert header.version_id == entry["version"]
    assert header.length == len(entry["key_block"])


@cases("tr31_wrap_unwrap.json", lambda e: e["version"] in "BD")
def test_tr31_wrap_byte_for_byte(entry: dict[str, Any]) -> None:
    block = tr31.wrap_key_block(
        h(entry["kbpk"]),
        entry["header"],
        h(entry["key"]),
        padding=h(entry["padding"]),
        masked_key_len=entry["masked_key_len"],
    )
    assert block == entry["key_block"]


@cases("tr31_wrap_unwrap.json", lambda e: e["version"] in "BD")
def test_tr31_wrap_padding_alone_is_enough(entry: dict[str, Any]) -> None:
    # Without masked_key_len, the injected padding's length is taken as given.
    block = tr31.wrap_key_block(
        h(entry["kbpk"]), entry["header"], h(entry["key"]), padding=h(entry["padding"])
    )
    assert block == entry["key_block"]


@cases("tr31_wrap_unwrap.json", lambda e: e["version"] in "AC")
def test_tr31_wrap_refuses_legacy_versions(entry: dict[str, Any]) -> None:
    with pytest.raises(tr31.KeyBlockError, match="versions B and D only"):
        tr31.wrap_key_block(
            h(entry["kbpk"]), entry["header"], h(entry["key"]), padding=h(entry["padding"])
        )


@cases("tr31_wrap_unwrap.json", lambda e: "key_kcv" in e)
def test_tr31_unwrapped_key_kcv(entry: dict[str, Any]) -> None:
    _, key = tr31.unwrap_key_block(h(entry["kbpk"]), entry["key_block"])
    expected = entry["key_kcv"]
    if len(expected) == 10:  # X9.143 5-byte CMAC KCV
        assert kcv.compute_kcv_block(key, "CMAC") == expected
    elif entry["header"][7] == "A":
        assert kcv.compute_kcv(key, "CMAC") == expected
    else:
        assert kcv.compute_kcv(key, "ANSI_X9_24") == expected


@cases("tr31_key_derivation.json")
def test_tr31_derive_block_keys(entry: dict[str, Any]) -> None:
    for version_id in entry["version"].split("/"):  # "A/C": both variant versions
        kbek, kbak = tr31.derive_block_keys(h(entry["kbpk"]), version_id)
        assert kbek == h(entry["kbek"])
        assert kbak == h(entry["kbak"])


# --- KDFs and ECDH ----------------------------------------------------------------------------


@cases("kdf_concat_sp800_56a.json")
def test_concat_kdf(entry: dict[str, Any]) -> None:
    derived = kdf.concat_kdf(h(entry["Z"]), h(entry["OtherInfo"]), entry["L_bytes"], entry["hash"])
    assert derived == h(entry["DKM"])


@cases("kdf_concat_sp800_56a.json", lambda e: "dIUT" in e)
def test_ecdh_z_and_derive_kbpk(entry: dict[str, Any]) -> None:
    curve = ecdh.CURVES[ecdh.normalize_curve(entry["curve"])]()
    private_key = ec.derive_private_key(int(entry["dIUT"], 16), curve)
    own = private_key.public_key().public_numbers()
    assert (own.x, own.y) == (int(entry["QIUTx"], 16), int(entry["QIUTy"], 16))
    peer = ec.EllipticCurvePublicNumbers(
        int(entry["QCAVSx"], 16), int(entry["QCAVSy"], 16), curve
    ).public_key()
    z = ecdh.shared_secret(private_key, peer)
    assert z == h(entry["Z"])  # bytes, leading zeros kept
    assert len(z) == (curve.key_size + 7) // 8
    key_algorithm = {16: "AES_128", 32: "AES_256"}[entry["L_bytes"]]
    kbpk = ecdh.derive_kbpk(
        private_key,
        peer,
        kdf="NIST_SP800",
        hash_algorithm=entry["hash"],
        key_algorithm=key_algorithm,
        shared_info=h(entry["OtherInfo"]),
    )
    assert kbpk == h(entry["DKM"])
    # The other party (CAVS) derives the same key from its side.
    cavs_key = ec.derive_private_key(int(entry["dCAVS"], 16), curve)
    assert ecdh.derive_kbpk(
        cavs_key,
        private_key.public_key(),
        hash_algorithm=entry["hash"],
        key_algorithm=key_algorithm,
        shared_info=h(entry["OtherInfo"]),
    ) == h(entry["DKM"])


@cases("kdf_ansi_x963.json")
def test_x963_kdf(entry: dict[str, Any]) -> None:
    derived = kdf.x963_kdf(h(entry["Z"]), h(entry["SharedInfo"]), entry["L_bytes"], entry["hash"])
    assert derived == h(entry["K"])


# --- KCV --------------------------------------------------------------------------------------


@cases("kcv.json")
def test_kcv(entry: dict[str, Any]) -> None:
    value = kcv.compute_kcv(h(entry["key"]), entry["algorithm"], hash_algorithm=entry.get("hash"))
    assert value == entry["apc_kcv"]
    if "kcv_5B" in entry:
        assert kcv.compute_kcv_block(h(entry["key"]), "CMAC") == entry["kcv_5B"]


# --- the copies -------------------------------------------------------------------------------


def test_vector_files_are_present() -> None:
    names = sorted(p.name for p in VECTORS_DIR.iterdir())
    assert names == [
        "README.md",
        "cipher_sp800_38a.json",
        "dataplane",
        "kcv.json",
        "kdf_ansi_x963.json",
        "kdf_concat_sp800_56a.json",
        "tr31_key_derivation.json",
        "tr31_wrap_unwrap.json",
    ]
    assert len(load_vectors("tr31_wrap_unwrap.json")) == 28


@pytest.mark.skipif(not SHARED_VECTORS_DIR.is_dir(), reason="../shared/vectors not beside the repo")
def test_vector_copies_match_shared() -> None:
    for shared in sorted(SHARED_VECTORS_DIR.rglob("*")):
        if shared.suffix in (".json", ".md"):
            relative = shared.relative_to(SHARED_VECTORS_DIR)
            copy = VECTORS_DIR / relative
            assert copy.is_file(), f"{relative} is not copied into tests/vectors"
            assert copy.read_bytes() == shared.read_bytes(), str(relative)


@cases("tr31_wrap_unwrap.json")
def test_tr31_vector_headers_as_apc_attributes(entry: dict[str, Any]) -> None:
    header, key = tr31.unwrap_key_block(h(entry["kbpk"]), entry["key_block"])
    if len(key) < 16:  # single-DES-sized test keys: APC has no such algorithm
        with pytest.raises(tr31.KeyBlockError):
            tr31.header_to_key_attributes(header, len(key))
        return
    attrs = tr31.header_to_key_attributes(header, len(key))
    assert attrs["KeyClass"] == "SYMMETRIC_KEY"
    assert str(attrs["KeyUsage"]).startswith(f"TR31_{header.key_usage}_")
    family = {"T": "TDES_", "A": "AES_"}[header.algorithm]
    assert str(attrs["KeyAlgorithm"]).startswith(family)
    modes = attrs["KeyModesOfUse"]
    assert isinstance(modes, dict)
    assert len(modes) == 9
