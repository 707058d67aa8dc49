"""cli/keyinput.py: every key source, driven through injected prompts; nothing echoed."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from apckx.cli import keyinput
from apckx.cli.keyinput import KeyInputIO, add_key_arguments, kcv_of, read_key
from apckx.errors import InputError, KeyMaterialError

AES256_HEX = "7B2A64E1C1D0A7F5396D1E2A0B8C4F3E5D6A7B8C9D0E1F2A3B4C5D6E7F809112"
TDES2_HEX = "0123456789ABCDEFFEDCBA9876543210"


def parse(*argv: str, name: str = "kek") -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_key_arguments(parser, name=name, label=name.upper())
    return parser.parse_args(list(argv))


def make_io(answers: list[str] | None = None, **kwargs: object) -> tuple[KeyInputIO, io.StringIO]:
    err = io.StringIO()
    queue = iter(answers or [])
    return KeyInputIO(getpass=lambda _p: next(queue), err=err, **kwargs), err  # type: ignore[arg-type]


def test_known_kcvs() -> None:
    # apc-control-plane.md section 6 reference vectors.
    assert kcv_of(bytes.fromhex(TDES2_HEX), "TDES_2KEY") == "08D7B4"
    assert kcv_of(bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C"), "AES_128") == "7AD386"


def test_hex_warns(tmp_path: Path) -> None:
    key_io, err = make_io()
    key = read_key(parse("--kek", AES256_HEX.lower()), "AES_256", io=key_io)
    assert key == bytes.fromhex(AES256_HEX)
    assert "shell history" in err.getvalue()
    assert AES256_HEX not in err.getvalue() and AES256_HEX.lower() not in err.getvalue()


def test_other_flag_names_for_import_key() -> None:
    key_io, err = make_io()
    key = read_key(parse("--key", TDES2_HEX, name="key"), "TDES_2KEY", name="key", io=key_io)
    assert key == bytes.fromhex(TDES2_HEX)
    assert "--key puts the key" in err.getvalue()


def test_env_and_stdin() -> None:
    key_io, _ = make_io(environ={"K": AES256_HEX})
    assert read_key(parse("--kek-env", "K"), "AES_256", io=key_io) == bytes.fromhex(AES256_HEX)
    key_io, _ = make_io(stdin=io.StringIO(AES256_HEX + "\n"))
    assert read_key(parse("--kek-file", "-"), "AES_256", io=key_io) == bytes.fromhex(AES256_HEX)


def test_prompt_shows_only_kcv() -> None:
    key_io, err = make_io([AES256_HEX])
    key = read_key(parse("--prompt"), "AES_256", io=key_io)
    assert f"KCV: {kcv_of(key, 'AES_256')}" in err.getvalue()
    assert AES256_HEX not in err.getvalue()


def test_components_combine_and_show_kcvs() -> None:
    parts = [TDES2_HEX, "11111111111111112222222222222222"]
    key_io, err = make_io(parts)
    key = read_key(parse("--components", "2"), "TDES_2KEY", io=key_io)
    expected = bytes(a ^ b for a, b in zip(*(bytes.fromhex(p) for p in parts), strict=True))
    assert key == expected
    text = err.getvalue()
    for part in parts:
        assert kcv_of(bytes.fromhex(part), "TDES_2KEY") in text
        assert part not in text
    assert f"(combined) KCV: {kcv_of(expected, 'TDES_2KEY')}" in text


def test_repeated_component_refused() -> None:
    key_io, _ = make_io([AES256_HEX, AES256_HEX])
    with pytest.raises(KeyMaterialError, match="repeats"):
        read_key(parse("--components", "2"), "AES_256", io=key_io)


def test_components_cancelling_out_refused() -> None:
    # Two equal halves XOR to zero: the combined key is degenerate.
    a = "11" * 16 + "22" * 16
    b = "33" * 16 + "44" * 16
    c = bytes(x ^ y for x, y in zip(bytes.fromhex(a), bytes.fromhex(b), strict=True)).hex()
    key_io, _ = make_io([a, b, c])
    with pytest.raises(KeyMaterialError):
        read_key(parse("--components", "3"), "AES_256", io=key_io)


def test_bad_component_names_its_number() -> None:
    key_io, _ = make_io([AES256_HEX, "12"])
    with pytest.raises(KeyMaterialError, match="component 2 of 2"):
        read_key(parse("--components", "2"), "AES_256", io=key_io)


def test_expect_kcv() -> None:
    key_io, _ = make_io()
    good = kcv_of(bytes.fromhex(AES256_HEX), "AES_256")
    read_key(parse("--kek", AES256_HEX, "--expect-kcv", good.lower()), "AES_256", io=key_io)
    read_key(parse("--kek", AES256_HEX, "--expect-kcv", good[:4]), "AES_256", io=key_io)
    with pytest.raises(KeyMaterialError, match="not 123456"):
        read_key(parse("--kek", AES256_HEX, "--expect-kcv", "123456"), "AES_256", io=key_io)


def test_file_errors(tmp_path: Path) -> None:
    key_io, _ = make_io()
    big = tmp_path / "big"
    big.write_text("A" * (keyinput.MAX_KEY_FILE_BYTES + 1))
    with pytest.raises(InputError, match="too large"):
        read_key(parse("--kek-file", str(big)), "AES_256", io=key_io)
    binary = tmp_path / "bin"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(KeyMaterialError, match="hex"):
        read_key(parse("--kek-file", str(binary)), "AES_256", io=key_io)
    with pytest.raises(InputError, match="no such file"):
        read_key(parse("--kek-file", str(tmp_path / "nope")), "AES_256", io=key_io)


def test_sources_are_exclusive() -> None:
    with pytest.raises(SystemExit):
        parse("--kek", AES256_HEX, "--prompt")


def test_default_io_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    hooked, _ = make_io([AES256_HEX])
    monkeypatch.setattr(keyinput, "DEFAULT_IO", hooked)
    assert read_key(parse("--prompt"), "AES_256") == bytes.fromhex(AES256_HEX)


def test_two_keys_in_one_parser() -> None:
    parser = argparse.ArgumentParser()
    add_key_arguments(
        parser,
        name="kek",
        label="KEK",
        prompt_flag="--kek-prompt",
        components_flag="--kek-components",
        expect_kcv_flag="--kek-expect-kcv",
    )
    add_key_arguments(parser, name="key", label="key")
    args = parser.parse_args(["--kek-prompt", "--key", TDES2_HEX])
    key_io, _ = make_io([AES256_HEX])
    assert read_key(args, "AES_256", io=key_io) == bytes.fromhex(AES256_HEX)
    assert read_key(args, "TDES_2KEY", name="key", io=key_io) == bytes.fromhex(TDES2_HEX)
