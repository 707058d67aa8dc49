"""Startup: ``apckx --help`` and ``apckx import-kek --help`` against ``python -c pass``.

Imports a command does not need must be deferred. The commands take turns (one run of each,
then the next round), so load from other processes on a shared machine hits them alike; each
gets its median. Bytecode is cached (under bench/out, as an installed apckx has it).
``python -X importtime`` shows which heavy packages (boto3, botocore, cryptography, psec) each
command loads, and which apckx module pulls each one in.

With ``--first-call``, also a fresh ``apckx import-kek`` against the emulator (``--latency-ms``,
default 100) cut in three by the emulator's request log: launch to the first call's arrival
(the fixed cost), the ceremony, and the last answer to the process's end; once with apckx's
start-up caches warm (``~/.cache/apckx``, as every run after the first has them) and once with
an empty cache directory each run (a first run: it also learns, at exit), side by side.

    .venv/bin/python bench/startup.py [--repeat 9] [--first-call] [--latency-ms 100] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import KEK_HEX, PYTHON, aws_env, emulator, fresh_dir, print_table, read_log, write_json

HEAVY = ("boto3", "botocore", "cryptography", "psec", "urllib3")
COMMANDS: dict[str, list[str]] = {
    "python -c pass": ["-c", "pass"],
    "apckx --help": ["-m", "apckx", "--help"],
    "apckx import-kek --help": ["-m", "apckx", "import-kek", "--help"],
    "apckx migrate --help": ["-m", "apckx", "migrate", "--help"],
    "apckx tr31 --help": ["-m", "apckx", "tr31", "--help"],
}


def console_script() -> list[str]:
    """The installed ``apckx`` script if there is one (what users run), else ``-m apckx``."""
    script = Path(PYTHON).parent / "apckx"
    return [str(script)] if script.exists() else [PYTHON, "-m", "apckx"]


def heavy_imports(args: list[str]) -> dict[str, str]:
    """Heavy top-level packages imported, each with the first apckx module importing it."""
    return _importtime(args)[0]


def slowest_apckx_modules(args: list[str], count: int = 4) -> list[tuple[str, float]]:
    """apckx's own modules with the largest self import time (ms), from -X importtime."""
    return _importtime(args)[1][:count]


def _importtime(args: list[str]) -> tuple[dict[str, str], list[tuple[str, float]]]:
    env = aws_env()
    result = subprocess.run(
        [PYTHON, "-X", "importtime", *args],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    found: dict[str, str] = {}
    own: list[tuple[str, float]] = []
    # importtime prints children before their parent; the innermost apckx module seen
    # after a heavy package's first line is the one that imported it.
    pending: list[str] = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        name = line.rsplit("|", 1)[1].strip()
        self_us = line.split(":", 1)[1].split("|")[0].strip()
        if name.startswith("apckx") and self_us.isdigit():
            own.append((name, int(self_us) / 1000))
        top = name.split(".")[0]
        if top in HEAVY and top not in found and top not in pending:
            pending.append(top)
        if name.startswith("apckx") and pending:
            for package in pending:
                found[package] = name
            pending = []
    for package in pending:
        found[package] = "(not from apckx)"
    own.sort(key=lambda item: -item[1])
    return found, own


def first_call_phases(repeat: int, latency_ms: float) -> dict[str, dict[str, float]]:
    """Median ms of each phase of a fresh import-kek, caches warm and cold, taking turns."""
    out = fresh_dir("startup")
    log_path = out / "requests.jsonl"
    warm_env = aws_env({"BENCH_KEK": KEK_HEX})
    phases: dict[str, list[tuple[float, float, float, float]]] = {"warm": [], "cold": []}
    with emulator("--latency-ms", f"{latency_ms:g}", request_log=log_path) as emu:
        for index in range(repeat + 1):  # the first round warms up (not counted)
            for side in ("warm", "cold") if index % 2 else ("cold", "warm"):
                env = dict(warm_env)
                if side == "cold":
                    env["XDG_CACHE_HOME"] = tempfile.mkdtemp(dir=out)
                work = out / f"{side}{index}"
                tag = f"{side}-{index}-{os.getpid()}"
                seen = len(read_log(log_path))
                t0 = time.time()
                subprocess.run(
                    [*console_script(), "import-kek", "--region", "us-east-1", "--endpoint-url",
                     emu.url, "--kek-env", "BENCH_KEK", "--certs-dir", str(work / "certs"),
                     "--journal-dir", str(work / "journal"), "--records-dir",
                     str(work / "records"), "--alias", f"alias/startup-{tag}",
                     "--receiver-alias", f"alias/startup-receiver-{tag}", "--root-alias",
                     f"alias/startup-root-{tag}"],
                    check=True, capture_output=True, env=env,
                )  # fmt: skip
                t1 = time.time()
                time.sleep(0.05)  # the log line is written just before the answer is sent
                calls = read_log(log_path)[seen:]
                first = min(c["start"] for c in calls)
                last = max(c["end"] for c in calls)
                if index:
                    phases[side].append((first - t0, last - first, t1 - last, t1 - t0))
    names = ("before_first_call_ms", "ceremony_ms", "after_last_call_ms", "wall_ms")
    medians: dict[str, dict[str, float]] = {}
    for side, runs in phases.items():
        columns = list(zip(*runs, strict=True))
        medians[side] = {
            name: round(statistics.median(column) * 1000, 1)
            for name, column in zip(names, columns, strict=True)
        }
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--first-call", action="store_true")
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--json")
    options = parser.parse_args()
    script = console_script()
    rows = []
    figures: dict[str, dict[str, object]] = {}
    env = aws_env()
    argvs = {
        label: [PYTHON, *args] if label == "python -c pass" else [*script, *args[2:]]
        for label, args in COMMANDS.items()
    }
    for argv in argvs.values():  # warm-up: bytecode written, files in the page cache
        subprocess.run(argv, check=True, capture_output=True, env=env)
    times: dict[str, list[float]] = {label: [] for label in argvs}
    for _ in range(options.repeat):
        for label, argv in argvs.items():
            t0 = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True, env=env)
            times[label].append(time.perf_counter() - t0)
    walls = {label: statistics.median(values) for label, values in times.items()}
    baseline = walls["python -c pass"]
    for label, args in COMMANDS.items():
        wall = walls[label]
        heavy = heavy_imports(args) if label != "python -c pass" else {}
        slowest = slowest_apckx_modules(args) if label != "python -c pass" else []
        figures[label] = {
            "slowest_apckx_modules_ms": [(m, round(ms, 1)) for m, ms in slowest],
            "wall_ms": round(wall * 1000, 1),
            "ratio_to_python": round(wall / baseline, 2),
            "over_python_ms": round((wall - baseline) * 1000, 1),
            "heavy_imports": heavy,
        }
        shown = ", ".join(f"{k} (via {v})" for k, v in heavy.items()) or "none"
        rows.append(
            (label, f"{wall * 1000:.0f}", f"{wall / baseline:.2f}x",
             f"+{(wall - baseline) * 1000:.0f}", shown)
        )  # fmt: skip
    print(f"startup, median of {options.repeat} runs ({' '.join(script)})")
    print_table(("command", "wall ms", "ratio", "over python ms", "heavy imports"), rows)
    result: dict[str, Any] = {"repeat": options.repeat, "figures": figures}
    if options.first_call:
        phases = first_call_phases(options.repeat, options.latency_ms)
        result["first_call"] = {"latency_ms": options.latency_ms, **phases}
        print(f"\nfresh import-kek, emulator --latency-ms {options.latency_ms:g}, median of "
              f"{options.repeat} runs each, taking turns")  # fmt: skip
        print_table(
            ("caches", "launch to first call ms", "ceremony ms", "last answer to exit ms",
             "wall ms"),
            [(side, *values.values()) for side, values in phases.items()],
        )  # fmt: skip
    write_json(options.json, "startup", result)


if __name__ == "__main__":
    main()
