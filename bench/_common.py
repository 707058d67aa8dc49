"""Shared helpers for the benchmarks: the emulator as a subprocess, timing, printing, results.

Every benchmark starts its own emulator (``apckx emulator serve --port 0``) on 127.0.0.1,
talks to it with the emulator's published test credentials, and stops it when done.
Results are printed and, with ``--json FILE``, written for ``bench/run_all.py``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The ceremony benchmarks (ceremony.py, process.py): a KEK each run may import, and the
# regions a run moves through so every run starts with a fresh receiver and root.
KEK_HEX = "7B2A64E1C1D0A7F5396D1E2A0B8C4F3E5D6A7B8C9D0E1F2A3B4C5D6E7F809112"  # bench only
KEK2_HEX = "1F2E3D4C5B6A79880716253443526170F1E2D3C4B5A69788796A5B4C3D2E1F00"  # bench only
REGIONS = [
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2",
    "eu-central-1", "ap-northeast-1", "ap-southeast-1", "ap-southeast-2", "ca-central-1",
    "eu-north-1", "sa-east-1", "ap-south-1", "ap-northeast-2", "eu-west-3", "eu-south-1",
    "ap-northeast-3", "eu-south-2", "eu-central-2", "ap-south-2", "ap-southeast-3",
    "ap-southeast-4", "me-central-1", "il-central-1", "ca-west-1",
]  # fmt: skip

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
OUT_DIR = BENCH_DIR / "out"  # git-ignored scratch space
PYTHON = sys.executable
APCKX = [PYTHON, "-m", "apckx"]
REGION = "us-east-1"


def machine() -> dict[str, Any]:
    """nproc, CPU model and Python version, for RESULTS.md."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def aws_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A child environment that knows only the emulator's test credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",  # noqa: S106 (the emulator's published test secret)
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    # As installed (pip compiles every module at install): bytecode is cached, here under
    # bench/out so nothing lands in src/. PYTHONDONTWRITEBYTECODE would make every process
    # recompile apckx's ~50 modules from source (tens of ms) while the sample is one file.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(OUT_DIR / "pycache")
    env.update(extra or {})
    return env


def set_aws_env() -> None:
    """The same environment for in-process clients (boto3 reads it)."""
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update({k: v for k, v in aws_env().items() if k.startswith("AWS_")})


@dataclass
class Emulator:
    url: str
    process: subprocess.Popen[str]
    request_log: Path | None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def emulator(*options: str, request_log: Path | None = None) -> Iterator[Emulator]:
    """``apckx emulator serve --port 0 OPTIONS`` as a subprocess; yields once it serves."""
    args = [*APCKX, "emulator", "serve", "--port", "0", *options]
    if request_log is not None:
        request_log.parent.mkdir(parents=True, exist_ok=True)
        request_log.unlink(missing_ok=True)
        args += ["--request-log", str(request_log)]
    process = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=aws_env(),
        cwd=ROOT,
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        process.kill()
        process.wait()
        raise RuntimeError(f"the emulator did not start (printed {url!r})")
    running = Emulator(url, process, request_log)
    try:
        yield running
    finally:
        running.stop()


def fresh_dir(name: str) -> Path:
    path = OUT_DIR / name
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def longest_chain(entries: Sequence[dict[str, Any]]) -> int:
    """Calls one after another (each starting after the previous ended): round trips."""
    ordered = sorted((e["start"], e["end"]) for e in entries)
    chain: list[int] = []
    for i, (start, _end) in enumerate(ordered):
        before = [chain[j] for j in range(i) if ordered[j][1] <= start]
        chain.append(1 + max(before, default=0))
    return max(chain, default=0)


def stages(entries: Sequence[dict[str, Any]]) -> list[list[str]]:
    """Calls grouped by round trip: a call's stage is the longest chain of calls that ended
    before it started, plus one (so the number of stages equals :func:`longest_chain`)."""
    ordered = sorted(entries, key=lambda e: e["start"])
    depth: list[int] = []
    for i, entry in enumerate(ordered):
        before = [depth[j] for j in range(i) if ordered[j]["end"] <= entry["start"]]
        depth.append(1 + max(before, default=0))
    groups: list[list[str]] = [[] for _ in range(max(depth, default=0))]
    for entry, level in zip(ordered, depth, strict=True):
        groups[level - 1].append(entry["operation"])
    return groups


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def rate(fn: Callable[[], Any], *, seconds: float = 1.0, min_runs: int = 5) -> float:
    """Calls of ``fn`` per second, run for about ``seconds`` (median of five slices)."""
    return compare_rates([fn], seconds=seconds, min_runs=min_runs)[0]


def compare_rates(
    fns: Sequence[Callable[[], Any]], *, seconds: float = 1.0, min_runs: int = 5, slices: int = 5
) -> list[float]:
    """Calls per second of each ``fn``, measured side by side.

    The functions take turns in short slices (a, b, a, b, ...) and each gets the median of
    its slices, so load from other processes on a shared machine hits both alike.
    """
    for fn in fns:
        fn()  # warm up
    per_slice: list[list[float]] = [[] for _ in fns]
    budget = seconds / slices
    for _ in range(slices):
        for index, fn in enumerate(fns):
            runs = 0
            t0 = time.perf_counter()
            while runs < min_runs or time.perf_counter() - t0 < budget:
                fn()
                runs += 1
            per_slice[index].append(runs / (time.perf_counter() - t0))
    return [statistics.median(values) for values in per_slice]


def median_wall(
    args: Sequence[str], *, repeat: int = 7, env: dict[str, str] | None = None
) -> float:
    """Median wall time of a subprocess, in seconds (stdout/stderr discarded)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(
            args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
        )
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def write_json(path: str | None, name: str, data: dict[str, Any]) -> None:
    if not path:
        return
    Path(path).write_text(json.dumps({"bench": name, **data}, indent=2, default=str))


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
