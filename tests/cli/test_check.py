"""``apckx check KEY`` end to end over real HTTP (the emulator), and its bad-input refusals."""

from __future__ import annotations

from typing import Any

import pytest

from apckx._cli import main
from support.check import logged_ops

# The ``aws`` fixture (emulator + KEK under alias/kek): tests/cli/conftest.py.
pytestmark = pytest.mark.usefixtures("quiet_apckx_loggers")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--input", "pan=12"], "--input pan must be 12..19 digits"),
        (["--input", "colour=red"], "--input: unknown name 'colour'"),
        (["--input", "pan"], "--input takes NAME=VALUE"),
        (["--input", "0123456789ABCDEF0123=1"], "unknown name (a value?)"),
        (["--expect", "cvv=12a"], "--expect cvv must be 3..5 digits"),
        (["--expect", "mac=ABC"], "--expect mac must be 8..128 hex"),
        (["--input", "pin=1234", "--input", "pin=4321"], "--input pin is given twice"),
        (["--input", "session-key-derivation=emvcommon"], "one of EmvCommon"),
        (["--expect-kcv", "XYZ"], "--expect-kcv must be 4 to 16 hex"),
    ],
)
def test_bad_input_exits_2_before_any_call(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    before = logged_ops(aws["log"])
    rc = main(["check", "alias/whatever", *extra, *aws["aws"]])
    out, err = capsys.readouterr()
    assert rc == 2
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert out == ""
    assert logged_ops(aws["log"]) == before


def test_bad_key_file_exits_2_before_any_call(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    bad = aws["tmp"] / "bad.hex"
    bad.write_text("0123")
    bad.chmod(0o600)
    before = logged_ops(aws["log"])
    rc = main(["check", "alias/whatever", "--key-file", str(bad), *aws["aws"]])
    _, err = capsys.readouterr()
    assert rc == 2
    assert "--key-file" in err
    assert logged_ops(aws["log"]) == before


def test_a_kek_has_no_data_plane_check(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["check", "alias/kek", *aws["aws"]])
    _, err = capsys.readouterr()
    assert rc == 2
    assert "no data-plane check for TR31_K" in err
    operations = logged_ops(aws["log"])
    assert "GetKey" in operations  # the log is read: the refusals above made no call at all
    assert not [op for op in operations if op.endswith(("Data", "Mac"))]

