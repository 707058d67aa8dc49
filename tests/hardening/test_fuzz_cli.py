"""Fuzzing every hex-taking CLI option through ``apckx._cli.main``.

For any value: exit code 0, 1 or 2; on failure exactly one error line (apckx's
``apckx: error: ...`` or argparse's ``apckx ...: error: ...``) and never a traceback; a
value given as a key never comes back on stdout or stderr.

Commands that would call APC point either at a closed port (the value is checked before any
call, or the call fails at once) or, where the value is only read after a GetKey, at one
in-process emulator holding a KEK. ``APCKX_FUZZ_EXAMPLES`` scales the examples (default 15
per option).
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import string
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apckx._cli import main
from apckx.ceremonies.import_key import WorkingKeySpec, build_working_key_block, resolve_key_usage
from apckx.cli import keyinput
from apckx.emulator.server import RunningEmulator, start_emulator

_EXAMPLES = int(os.environ.get("APCKX_FUZZ_EXAMPLES", "40"))
_HEALTH = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
FUZZ = settings(max_examples=max(5, _EXAMPLES * 3 // 8), deadline=None,
                suppress_health_check=_HEALTH)  # fmt: skip
# Options whose value is read only after a call to the emulator: a client each time (~0.2 s).
FUZZ_WITH_CALLS = settings(max_examples=max(3, _EXAMPLES // 8), deadline=None,
                           suppress_health_check=_HEALTH)  # fmt: skip
WITH_CALLS = {"import-key --kek", "migrate --kek", "export-key --expect-kcv",
              "export-key --shared-info", "import-key --key-block"}  # fmt: skip

KEK_HEX = "00112233445566778899AABBCCDDEEFF0123456789ABCDEFFEDCBA9876543210"
WORKING_KEY_HEX = "3F419E1CB7079442AA37474C2EFBF8B8"
BLOCK = build_working_key_block(
    bytes.fromhex(KEK_HEX),
    "AES_256",
    bytes.fromhex(WORKING_KEY_HEX),
    WorkingKeySpec(resolve_key_usage("D0"), "AES_128"),
)

hexish = st.text(alphabet=string.hexdigits + " :-_xZ", max_size=80)
values = hexish | st.text(max_size=40) | st.sampled_from(
    ["", "-", "--", "@", "@missing", "0", "00" * 32, "FF" * 33, KEK_HEX[:-1], "0x" + KEK_HEX,
     "\x00", "é" * 8, "1" * 5000]
)  # fmt: skip


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there once the socket is closed


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """cwd in a temp dir, the emulator's credentials, an emulator holding alias/kek."""
    work = tmp_path_factory.mktemp("fuzz-cli")
    saved_env = dict(os.environ)
    saved_cwd = Path.cwd()
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update(
        AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
        AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        FUZZ_KEK=KEK_HEX, FUZZ_WORKING_KEY=WORKING_KEY_HEX,
    )  # fmt: skip
    os.chdir(work)
    emulator: RunningEmulator = start_emulator()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            rc = main(["import-kek", "--region", "us-east-1", "--endpoint-url", emulator.url,
                       "--kek-env", "FUZZ_KEK", "--alias", "alias/kek"])  # fmt: skip
        assert rc == 0
        Path("m.csv").write_text(
            f"alias,key_hex,key_usage,key_algorithm\nalias/fuzz-1,{WORKING_KEY_HEX},D0,AES_128\n"
        )
        yield {"emulator": emulator.url, "closed": _closed_port_url()}
    finally:
        emulator.stop()
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


def _aws(url: str) -> list[str]:
    return ["--region", "us-east-1", "--endpoint-url", url, "--max-attempts", "1"]


# (name, argv builder given (urls, value), is the value a secret?)
CASES: dict[str, tuple[bool, object]] = {
    "import-kek --kek": (True, lambda u, v: ["import-kek", *_aws(u["closed"]), f"--kek={v}"]),
    "import-kek --shared-info": (False, lambda u, v: [
        "import-kek", *_aws(u["closed"]), "--kek-env", "FUZZ_KEK", f"--shared-info={v}"]),
    "import-kek --expect-kcv": (False, lambda u, v: [
        "import-kek", *_aws(u["closed"]), "--kek-env", "FUZZ_KEK", f"--expect-kcv={v}"]),
    "import-kek --trust-apc-root": (False, lambda u, v: [
        "import-kek", *_aws(u["closed"]), "--kek-env", "FUZZ_KEK", f"--trust-apc-root={v}"]),
    "import-kek --header": (False, lambda u, v: [
        "import-kek", *_aws(u["closed"]), "--kek-env", "FUZZ_KEK", f"--header={v}"]),
    "import-key --key-block": (False, lambda u, v: [
        "import-key", *_aws(u["closed"]), "--kek-id", "alias/kek", f"--key-block={v}"]),
    "import-key --kcv": (False, lambda u, v: [
        "import-key", *_aws(u["closed"]), "--kek-id", "alias/kek", f"--key-block={BLOCK}",
        f"--kcv={v}"]),
    "import-key --kek": (True, lambda u, v: [
        "import-key", *_aws(u["emulator"]), "--kek-id", "alias/kek", f"--kek={v}",
        "--key-env", "FUZZ_WORKING_KEY", "--key-usage", "D0", "--key-algorithm", "AES_128"]),
    "import-key --shared-info": (False, lambda u, v: [
        "import-key", *_aws(u["closed"]), "--via", "ecdh", "--alias", "alias/x",
        "--key-env", "FUZZ_WORKING_KEY", "--key-usage", "D0", "--key-algorithm", "AES_128",
        f"--shared-info={v}"]),
    "export-key --shared-info": (False, lambda u, v: [
        "export-key", *_aws(u["closed"]), "--key", "alias/kek", "--via", "ecdh",
        f"--shared-info={v}"]),
    "export-key --expect-kcv": (False, lambda u, v: [
        "export-key", *_aws(u["emulator"]), "--key", "alias/kek", "--kek-id", "alias/kek",
        "--kek-env", "FUZZ_KEK", f"--expect-kcv={v}", "--out", "never-written.tr31"]),
    "migrate --kek": (True, lambda u, v: [
        "migrate", "m.csv", *_aws(u["emulator"])[:4], "--kek-id", "alias/kek", f"--kek={v}",
        "--journal-dir", "mig"]),
    "kcv --key-env": (True, lambda u, v: ["kcv", "--key-env", "FUZZ_VALUE"]),
    "kcv --key-expect-kcv": (False, lambda u, v: [
        "kcv", "--key-env", "FUZZ_WORKING_KEY", f"--key-expect-kcv={v}"]),
    "tr31 inspect": (False, lambda u, v: ["tr31", "inspect", v]),
    # Hex typed at masked prompts (the value is what getpass returns).
    "import-kek --prompt": (True, lambda u, v: ["import-kek", *_aws(u["closed"]), "--prompt"]),
    "import-kek --components": (True, lambda u, v: [
        "import-kek", *_aws(u["closed"]), "--components", "2"]),
}  # fmt: skip


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """Run apckx in-process; stdin is empty (``-`` reads it), stdout and stderr captured."""
    out, err = io.StringIO(), io.StringIO()
    saved_stdin = sys.stdin
    sys.stdin = io.StringIO("")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(argv)
    finally:
        sys.stdin = saved_stdin
    return rc, out.getvalue(), err.getvalue()


def check_outcome(rc: int, out: str, err: str, value: str, secret: bool) -> None:
    assert rc in (0, 1, 2), (rc, err)
    assert "Traceback" not in err and "Traceback" not in out
    assert not any(line.startswith('  File "') for line in err.splitlines()), err
    if rc != 0:
        errors = [line for line in err.splitlines() if ": error: " in line]
        assert len(errors) == 1, err
        assert err.rstrip().splitlines()[-1] == errors[0], err
        if rc == 1 or errors[0].startswith("apckx: error: "):
            assert errors[0].startswith("apckx: error: "), err
    compact = "".join(value.split())
    if secret and len(compact) >= 8 and len(set(compact)) > 2:
        assert compact not in out and compact not in err
        assert compact.upper() not in err.upper()


@pytest.mark.parametrize("case", sorted(CASES))
def test_hex_options_fail_cleanly(cli_env: dict[str, str], case: str) -> None:
    secret, build = CASES[case]

    @(FUZZ_WITH_CALLS if case in WITH_CALLS else FUZZ)
    @given(values)
    def run(value: str) -> None:
        if case == "kcv --key-env":
            os.environ["FUZZ_VALUE"] = value.replace("\x00", "")
        typed = iter([value, KEK_HEX])  # --prompt reads one, --components 2 reads two
        keyinput.DEFAULT_IO = keyinput.KeyInputIO(getpass=lambda prompt: next(typed))
        try:
            rc, out, err = run_cli(build(cli_env, value))  # type: ignore[operator]
        finally:
            keyinput.DEFAULT_IO = None
        check_outcome(rc, out, err, value, secret)

    run()


def test_tr31_inspect_of_a_good_block_exits_0(cli_env: dict[str, str]) -> None:
    rc, out, err = run_cli(["tr31", "inspect", BLOCK])
    assert rc == 0, err
    assert "D0" in out
    assert WORKING_KEY_HEX not in out + err
