"""Process hardening (issue 13 item 4, issue 12 prompts): no core file holds a typed key, and
a masked prompt that gets end of input, or no terminal at all, is one line and exit 2.

The core-dump probe runs ``apckx kcv --key-prompt`` in a child process whose core limit is
raised to unlimited; the "custodian" types a component and the process gets SIGQUIT at the
prompt (what Ctrl-\\ does). Skipped where the kernel pipes cores elsewhere (apport, systemd).
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from apckx._cli import main
from apckx.cli import keyinput

KEY_HEX = "7E3A9C1B5D2F4A6E8C0B1D3F5A7C9E2B"
TIMEOUT = 30


def _core_pattern() -> str | None:
    try:
        return Path("/proc/sys/kernel/core_pattern").read_text().strip()
    except OSError:
        return None


def test_limits_are_set_in_a_child_running_main() -> None:
    code = textwrap.dedent(
        """
        import resource, sys
        from apckx._cli import main
        main(["kcv", "--help"])
        soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
        dumpable = -1
        if sys.platform.startswith("linux"):
            import ctypes
            dumpable = ctypes.CDLL(None).prctl(3, 0, 0, 0, 0)  # PR_GET_DUMPABLE
        print(soft, hard, dumpable)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT, check=True
    )
    soft, hard, dumpable = (int(v) for v in done.stdout.split()[-3:])
    assert (soft, hard) == (0, 0)
    if sys.platform.startswith("linux"):
        assert dumpable == 0


@pytest.mark.skipif(_core_pattern() != "core", reason="cores are not written as ./core here")
def test_sigquit_at_a_masked_prompt_writes_no_core(tmp_path: Path) -> None:
    if resource.getrlimit(resource.RLIMIT_CORE)[1] != resource.RLIM_INFINITY:
        pytest.skip("this process cannot let a child dump core (hard RLIMIT_CORE is limited)")
    code = textwrap.dedent(
        f"""
        import os, resource, signal
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        from apckx._cli import main
        from apckx.cli import keyinput
        typed = []
        def getpass(prompt):
            typed.append(bytes.fromhex("{KEY_HEX}") * 1000)  # the component, in memory
            os.kill(os.getpid(), signal.SIGQUIT)
            return "{KEY_HEX}"
        keyinput.DEFAULT_IO = keyinput.KeyInputIO(getpass=getpass)
        main(["kcv", "--key-prompt", "--key-algorithm", "AES_128"])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert done.returncode == -3  # SIGQUIT
    cores = [p.name for p in tmp_path.iterdir() if p.name.startswith("core")]
    assert cores == []


# -- prompts: end of input and no terminal ------------------------------------------------


def run_cli(argv: list[str], getpass: Callable[[str], str]) -> tuple[int, str, str]:
    saved = keyinput.DEFAULT_IO
    keyinput.DEFAULT_IO = keyinput.KeyInputIO(getpass=getpass)
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(argv)
    finally:
        keyinput.DEFAULT_IO = saved
    return rc, out.getvalue(), err.getvalue()


def eof_at(n: int) -> Callable[[str], str]:
    """Answers prompts with distinct valid components, then EOF at prompt ``n`` (1-based)."""
    count = [0]

    def getpass(prompt: str) -> str:
        count[0] += 1
        if count[0] == n:
            raise EOFError
        return f"{count[0]:02X}" * (32 if "AES_256" in prompt else 16)

    return getpass


PROMPT_CASES = [
    (["kcv", "--key-prompt", "--key-algorithm", "AES_128"], 1),
    *[(["kcv", "--key-components", "3", "--key-algorithm", "AES_128"], n) for n in (1, 2, 3)],
    (["import-kek", "--prompt", "--region", "us-east-1"], 1),
    *[(["import-kek", "--components", "2", "--region", "us-east-1"], n) for n in (1, 2)],
]


@pytest.mark.parametrize(("argv", "at"), PROMPT_CASES)
def test_eof_at_every_prompt_is_one_line_exit_2(argv: list[str], at: int) -> None:
    rc, _out, err = run_cli(argv, eof_at(at))
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    assert lines[-1].startswith("apckx: error: no ") and "end of input" in lines[-1]
    assert len([line for line in lines if line.startswith("apckx: error")]) == 1


def test_prompt_without_a_terminal_is_one_line_exit_2(tmp_path: Path) -> None:
    # A new session has no controlling terminal, and stdin is a pipe: getpass has nowhere
    # to prompt and would fall back to an echoing read of stdin.
    done = subprocess.run(
        [sys.executable, "-m", "apckx", "kcv", "--key-prompt", "--key-algorithm", "AES_128"],
        input=KEY_HEX + "\n", capture_output=True, text=True, timeout=TIMEOUT,
        start_new_session=True, cwd=tmp_path, env={**os.environ, "PYTHONWARNINGS": "default"},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "Warning" not in done.stderr
    assert done.stderr.strip().count("\n") == 0
    assert "needs a terminal" in done.stderr
    assert KEY_HEX not in done.stdout + done.stderr


# -- the prompts that come after GetKey (import-key, export-key under a KEK) --------------

KEK_HEX = "5D2E8A7B19C4F6033E0B7A6C5D4E3F2A1B0C9D8E7F6A5B4C3D2E1F0A9B8C7D6E"


@pytest.fixture(scope="module")
def emulator_with_kek(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from apckx.emulator.server import EmulatorConfig, start_emulator

    work = tmp_path_factory.mktemp("prompts")
    saved_env, saved_cwd = dict(os.environ), Path.cwd()
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
                      AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
                      PROMPT_KEK=KEK_HEX, PROMPT_WORK=KEK_HEX[:32])  # fmt: skip
    os.chdir(work)
    emulator = start_emulator(EmulatorConfig())
    try:
        rc, _, err = run_cli(["import-kek", "--region", "us-east-1", "--endpoint-url",
                              emulator.url, "--kek-env", "PROMPT_KEK", "--alias", "alias/kek"],
                             eof_at(99))  # fmt: skip
        assert rc == 0, err
        rc, _, err = run_cli(["import-key", "--region", "us-east-1", "--endpoint-url",
                              emulator.url, "--kek-id", "alias/kek", "--kek-env", "PROMPT_KEK",
                              "--key-env", "PROMPT_KEK", "--key-usage", "D0", "--key-algorithm",
                              "AES_256", "--alias", "alias/work"], eof_at(99))  # fmt: skip
        assert rc == 0, err
        yield emulator.url
    finally:
        emulator.stop()
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


IMPORT_UNDER_KEK = ["import-key", "--kek-id", "alias/kek", "--key-usage", "D0",
                    "--key-algorithm", "AES_128"]  # fmt: skip
EXPORT_UNDER_KEK = ["export-key", "--key", "alias/work", "--kek-id", "alias/kek"]
AFTER_GET_KEY = [
    ([*IMPORT_UNDER_KEK, "--prompt", "--key-env", "PROMPT_WORK"], 1),
    ([*IMPORT_UNDER_KEK, "--kek-env", "PROMPT_KEK", "--key-prompt"], 1),
    *[([*IMPORT_UNDER_KEK, "--kek-env", "PROMPT_KEK", "--key-components", "2"], n)
      for n in (1, 2)],
    ([*EXPORT_UNDER_KEK, "--prompt"], 1),
    *[([*EXPORT_UNDER_KEK, "--kek-components", "2"], n) for n in (1, 2)],
]  # fmt: skip


@pytest.mark.parametrize(("argv", "at"), AFTER_GET_KEY)
def test_eof_at_the_prompts_after_get_key(emulator_with_kek: str, argv: list[str], at: int) -> None:
    rc, _out, err = run_cli(
        [*argv, "--region", "us-east-1", "--endpoint-url", emulator_with_kek], eof_at(at)
    )
    assert rc == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("apckx: error")]
    assert len(lines) == 1 and "end of input" in lines[0], err
