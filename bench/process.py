"""Whole processes, side by side: what a custodian waits for, interpreter start included.

One emulator (``--latency-ms N``, default 100, with a request log); each round, in turn:

1. the AWS sample re-created (``python bench/sample_import_kek.py``) in a fresh region;
2. a fresh ``apckx import-kek`` (``.venv/bin/apckx``, new certs dir) in another fresh region;
3. the same ``apckx import-kek`` again (the alias already names that KEK: nothing imported);
4. a repeat ``apckx import-kek`` from the same certs dir (receiver and root reused), of another
   KEK onto the same alias (``--replace``), as the sample's second run moves its alias;
5. ``apckx import-kek --help`` and ``python -c pass``.

The sides alternate inside every round, so load from other processes on a shared machine
hits them alike; each figure is the median over the rounds. Calls and calls in sequence (round
trips) come from the emulator's request log, cut per process.

    .venv/bin/python bench/process.py [--rounds 5] [--latency-ms 100] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from _common import (
    BENCH_DIR,
    KEK2_HEX,
    KEK_HEX,
    PYTHON,
    REGIONS,
    aws_env,
    emulator,
    fresh_dir,
    longest_chain,
    print_table,
    read_log,
    stages,
    write_json,
)


def apckx_command() -> list[str]:
    """The installed console script (what users run), else ``python -m apckx``."""
    script = Path(PYTHON).parent / "apckx"
    return [str(script)] if script.exists() else [PYTHON, "-m", "apckx"]


CPU: dict[str, list[float]] = {}  # user + system CPU seconds of each timed process, by side


def run_timed(
    args: list[str], env: dict[str, str], *, stdin: str | None = None, side: str | None = None
) -> float:
    """Wall seconds of one whole process; its CPU time (user + system, from the children's
    rusage, so the process and anything it forks) goes to ``CPU[side]``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(
        args, input=stdin, text=True, check=True, capture_output=True, env=env, cwd=BENCH_DIR
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if side is not None:
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        CPU.setdefault(side, []).append(cpu)
    return wall


class Slicer:
    """Cuts the request log into the calls of each process."""

    def __init__(self, path: Path) -> None:
        self.path, self.seen = path, 0

    def take(self) -> list[dict[str, Any]]:
        time.sleep(0.05)  # the log line is written just before the answer is sent
        entries = read_log(self.path)
        new, self.seen = entries[self.seen :], len(entries)
        return new


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--json")
    options = parser.parse_args()
    if not 1 <= options.rounds <= len(REGIONS) // 2 - 1:
        parser.error(f"--rounds must be 1..{len(REGIONS) // 2 - 1}")
    env = aws_env({"BENCH_KEK": KEK_HEX, "BENCH_KEK2": KEK2_HEX})
    apckx = apckx_command()
    out = fresh_dir("process")
    log_path = out / "requests.jsonl"
    walls: dict[str, list[float]] = {
        k: [] for k in ("sample", "fresh", "again", "repeat", "help", "python")
    }
    calls: dict[str, list[dict[str, Any]]] = {"sample": [], "fresh": [], "again": [],
                                              "repeat": []}  # fmt: skip
    load_before = os.getloadavg()[0]
    with emulator("--latency-ms", f"{options.latency_ms:g}", request_log=log_path) as emu:
        slicer = Slicer(log_path)
        regions = iter(REGIONS)
        # Warm-up (not counted): the OS page cache, .pyc files, OpenSSL.
        run_timed([PYTHON, str(BENCH_DIR / "sample_import_kek.py"), "--endpoint-url", emu.url,
                   "--region", next(regions)], env, stdin=KEK_HEX)  # fmt: skip
        run_timed([*apckx, "import-kek", "--help"], env)
        slicer.take()
        for index in range(options.rounds):
            work = out / f"round{index}"
            sample_args = [PYTHON, str(BENCH_DIR / "sample_import_kek.py"), "--endpoint-url",
                           emu.url, "--region", next(regions)]  # fmt: skip
            region = next(regions)
            apckx_args = [
                *apckx, "import-kek", "--region", region, "--endpoint-url", emu.url,
                "--kek-env", "BENCH_KEK", "--certs-dir", str(work / "certs"),
                "--journal-dir", str(work / "journal"), "--records-dir", str(work / "records"),
            ]  # fmt: skip
            # Alternate which side goes first, so neither always follows the other.
            order = ["sample", "fresh"] if index % 2 == 0 else ["fresh", "sample"]
            for side in order:
                if side == "sample":
                    walls["sample"].append(
                        run_timed(sample_args, env, stdin=KEK_HEX, side="sample")
                    )
                else:
                    walls["fresh"].append(run_timed(apckx_args, env, side="fresh"))
                calls[side].append({"entries": slicer.take()})
            # The same command again: the alias already names this KEK, nothing is imported.
            walls["again"].append(run_timed(apckx_args, env, side="again"))
            calls["again"].append({"entries": slicer.take()})
            repeat_args = [*apckx_args, "--replace"]
            repeat_args[repeat_args.index("BENCH_KEK")] = "BENCH_KEK2"
            walls["repeat"].append(run_timed(repeat_args, env, side="repeat"))
            calls["repeat"].append({"entries": slicer.take()})
            walls["python"].append(run_timed([PYTHON, "-c", "pass"], env))
            walls["help"].append(run_timed([*apckx, "import-kek", "--help"], env))
    med = {k: statistics.median(v) * 1000 for k, v in walls.items()}
    last = {k: v[-1]["entries"] for k, v in calls.items()}
    figures = {
        "latency_ms": options.latency_ms,
        "rounds": options.rounds,
        "wall_ms": {k: round(v, 1) for k, v in med.items()},
        "rounds_ms": {k: [round(x * 1000, 1) for x in v] for k, v in walls.items()},
        "calls": {k: len(v) for k, v in last.items()},
        "in_sequence": {k: longest_chain(v) for k, v in last.items()},
        "stages": {k: [" + ".join(s) for s in stages(v)] for k, v in last.items()},
        "ratio_sample_to_fresh": round(med["sample"] / med["fresh"], 2),
        "ratio_sample_to_repeat": round(med["sample"] / med["repeat"], 2),
        "ratio_help_to_python": round(med["help"] / med["python"], 2),
        "cpu_ms": {k: round(statistics.median(v) * 1000, 1) for k, v in CPU.items()},
    }
    cpu = figures["cpu_ms"]
    figures["cpu_ratio_sample_to_fresh"] = round(cpu["sample"] / cpu["fresh"], 2)
    print(
        f"whole processes: emulator --latency-ms {options.latency_ms:g}, median of "
        f"{options.rounds} interleaved round(s) ({' '.join(apckx)}); load average (1 min) "
        f"{load_before:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    rows = [
        ("AWS sample (bench/sample_import_kek.py)", f"{med['sample']:.0f}",
         figures["calls"]["sample"], figures["in_sequence"]["sample"], "1.00x"),
        ("apckx import-kek, fresh", f"{med['fresh']:.0f}", figures["calls"]["fresh"],
         figures["in_sequence"]["fresh"], f"{figures['ratio_sample_to_fresh']:.2f}x"),
        ("apckx import-kek, same command again", f"{med['again']:.0f}",
         figures["calls"]["again"], figures["in_sequence"]["again"],
         f"{med['sample'] / med['again']:.2f}x"),
        ("apckx import-kek, repeat (new KEK, --replace)", f"{med['repeat']:.0f}",
         figures["calls"]["repeat"], figures["in_sequence"]["repeat"],
         f"{figures['ratio_sample_to_repeat']:.2f}x"),
    ]  # fmt: skip
    rows = [
        (*row[:2], f"{cpu[key]:.0f}", *row[2:], f"{cpu['sample'] / cpu[key]:.2f}x")
        for row, key in zip(rows, ("sample", "fresh", "again", "repeat"), strict=True)
    ]
    print_table(("process", "wall ms", "cpu ms", "calls", "in sequence", "sample / this",
                 "cpu sample / this"), rows)  # fmt: skip
    for side in ("sample", "fresh", "again", "repeat"):
        print(f"  {side} stages: " + " | ".join(figures["stages"][side]))
    print(
        f"\nstart-up: apckx import-kek --help {med['help']:.0f} ms, python -c pass "
        f"{med['python']:.0f} ms: ratio {figures['ratio_help_to_python']:.2f}x"
    )
    write_json(options.json, "process", figures)


if __name__ == "__main__":
    main()
