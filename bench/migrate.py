"""Migrate: 500 keys against the emulator's ``--rate-limit 50``.

Two ways of importing the same 500 TR-31 blocks, each in a region of its own (the emulator's
rate limit is per region), one after the other:

1. ``apckx migrate MANIFEST --rate 50`` (a subprocess; ImportKey + CreateAlias per key,
   paced by its token bucket, retries through the bucket);
2. an unpaced pool of 16 threads calling ImportKey with botocore's default retries
   (``legacy`` mode, 5 attempts), as a script written without pacing would.

Figures from the emulator's request log: successful calls per second over the run (first
call's start to last call's end) as a fraction of the limit, calls throttled, keys failed.

    .venv/bin/python bench/migrate.py [--keys 500] [--rate-limit 50] [--json FILE]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import io
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from _common import (
    APCKX,
    aws_env,
    emulator,
    fresh_dir,
    print_table,
    read_log,
    set_aws_env,
    write_json,
)
from apckx._cli import main as apckx_main

KEK_HEX = "00112233445566778899AABBCCDDEEFF0123456789ABCDEFFEDCBA9876543210"  # bench only
KEK_ALIAS = "alias/bench-migrate-kek"
MIGRATE_REGION, POOL_REGION = "us-east-1", "us-west-2"


def import_kek(url: str, region: str, work: Path) -> None:
    """The KEK both runs wrap under, imported over ECDH by apckx itself (not measured)."""
    os.environ["BENCH_KEK"] = KEK_HEX
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        rc = apckx_main([
            "import-kek", "--region", region, "--endpoint-url", url, "--kek-env", "BENCH_KEK",
            "--alias", KEK_ALIAS, "--certs-dir", str(work / "certs"),
            "--journal-dir", str(work / "kek-journal"), "--records-dir", str(work / "records"),
        ])  # fmt: skip
    if rc != 0:
        raise RuntimeError(f"KEK setup failed: {err.getvalue().strip()}")


def build_blocks(count: int) -> list[tuple[str, str, str]]:
    """(alias, key block, KCV) for ``count`` random AES-128 data keys under the KEK."""
    from apckx.ceremonies.import_key import (
        WorkingKeySpec,
        build_working_key_block,
        compute_key_kcv,
        resolve_key_usage,
    )
    from apckx.crypto.keys import generate_key

    spec = WorkingKeySpec(resolve_key_usage("D0"), "AES_128")
    kek = bytes.fromhex(KEK_HEX)
    rows = []
    for index in range(count):
        key = generate_key("AES_128")
        block = build_working_key_block(kek, "AES_256", key, spec)
        rows.append((f"alias/bench-key-{index:04d}", block, compute_key_kcv(key, "AES_128")))
    return rows


def window_figures(entries: list[dict[str, Any]], limit: float) -> dict[str, Any]:
    ok = [e for e in entries if e["status"] == 200]
    throttled = [e for e in entries if e.get("error") == "ThrottlingException"]
    span = max(e["end"] for e in entries) - min(e["start"] for e in entries)
    ok_per_s = len(ok) / span if span > 0 else 0.0
    return {
        "calls": len(entries),
        "ok_calls": len(ok),
        "throttled": len(throttled),
        "other_errors": len(entries) - len(ok) - len(throttled),
        "span_s": round(span, 2),
        "ok_calls_per_s": round(ok_per_s, 1),
        "fraction_of_limit": round(ok_per_s / limit, 3),
    }


def run_migrate(
    url: str, manifest: Path, work: Path, rate: float, workers: int
) -> tuple[float, dict[str, Any]]:
    args = [
        *APCKX, "migrate", str(manifest), "--kek-id", KEK_ALIAS, "--rate", f"{rate:g}",
        "--workers", str(workers), "--journal-dir", str(work / "journal"), "--output", "json",
        "--region", MIGRATE_REGION, "--endpoint-url", url,
    ]  # fmt: skip
    t0 = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env=aws_env(), check=False)
    wall = time.perf_counter() - t0
    if done.returncode not in (0, 1):
        raise RuntimeError(f"apckx migrate failed: {done.stderr.strip()[-500:]}")
    return wall, json.loads(done.stdout)


def run_pool(url: str, rows: list[tuple[str, str, str]], threads: int) -> dict[str, Any]:
    """ImportKey for every block from ``threads`` threads, no pacing, botocore's defaults."""
    import boto3
    from botocore.config import Config

    client = boto3.Session(region_name=POOL_REGION).client(
        "payment-cryptography",
        endpoint_url=url,
        config=Config(max_pool_connections=threads),  # retries: botocore's default
    )
    arn = client.get_alias(AliasName=KEK_ALIAS)["Alias"]["KeyArn"]
    failures: dict[str, int] = {}

    def import_one(block: str) -> bool:
        try:
            client.import_key(
                KeyMaterial={
                    "Tr31KeyBlock": {"WrappingKeyIdentifier": arn, "WrappedKeyBlock": block}
                },
                KeyCheckValueAlgorithm="CMAC",
            )
            return True
        except Exception as exc:  # the figure is how many keys fail, and why
            name = type(exc).__name__
            failures[name] = failures.get(name, 0) + 1
            return False

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(import_one, [block for _, block, _ in rows]))
    wall = time.perf_counter() - t0
    client.close()
    return {
        "wall_s": round(wall, 2),
        "keys_ok": sum(results),
        "keys_failed": len(results) - sum(results),
        "failures": failures,
        "retry_mode": client.meta.config.retries or "botocore default (legacy, 5 attempts)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=500)
    parser.add_argument("--rate-limit", type=float, default=50.0, help="the emulator's limit")
    parser.add_argument("--workers", type=int, default=8, help="apckx migrate --workers")
    parser.add_argument("--threads", type=int, default=16, help="the unpaced pool's threads")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--json")
    options = parser.parse_args()
    set_aws_env()
    out = fresh_dir("migrate")
    log_path = out / "requests.jsonl"
    rows = build_blocks(options.keys)
    manifest = out / "manifest.csv"
    manifest.write_text(
        "alias,key_block,kcv\n" + "".join(f"{a},{b},{k}\n" for a, b, k in rows)
    )
    with emulator(
        "--rate-limit", f"{options.rate_limit:g}", "--latency-ms", f"{options.latency_ms:g}",
        request_log=log_path,
    ) as emu:  # fmt: skip
        import_kek(emu.url, MIGRATE_REGION, out / "migrate")
        import_kek(emu.url, POOL_REGION, out / "pool")
        time.sleep(1.5)  # let the emulator's bucket refill after the setup calls
        seen = len(read_log(log_path))
        wall, result = run_migrate(
            emu.url, manifest, out / "migrate", options.rate_limit, options.workers
        )
        time.sleep(0.2)
        entries = read_log(log_path)
        migrate_log, seen = entries[seen:], len(entries)
        time.sleep(1.5)
        pool = run_pool(emu.url, rows, options.threads)
        time.sleep(0.2)
        pool_log = [e for e in read_log(log_path)[seen:] if e["operation"] == "ImportKey"]
    migrate_figures = {
        **window_figures(migrate_log, options.rate_limit),
        "wall_s": round(wall, 2),
        "keys_ok": result["imported"] + result["skipped"],
        "keys_failed": result["failed"],
        "client_calls": result["calls"],
        "client_throttled": result["throttled"],
        "client_retried": result["retried"],
    }
    pool_figures = {**window_figures(pool_log, options.rate_limit), **pool}
    print(
        f"migrate: {options.keys} keys, emulator --rate-limit {options.rate_limit:g} "
        f"(latency {options.latency_ms:g} ms); successful calls/s over each run's span"
    )
    print_table(
        ("run", "calls", "ok calls/s", "of limit", "throttled", "keys ok", "keys failed",
         "wall s"),
        [
            (f"apckx migrate --rate {options.rate_limit:g} --workers {options.workers}",
             migrate_figures["calls"], migrate_figures["ok_calls_per_s"],
             f"{migrate_figures['fraction_of_limit']:.1%}", migrate_figures["throttled"],
             migrate_figures["keys_ok"], migrate_figures["keys_failed"],
             migrate_figures["wall_s"]),
            (f"{options.threads} threads, unpaced, botocore default retries",
             pool_figures["calls"], pool_figures["ok_calls_per_s"],
             f"{pool_figures['fraction_of_limit']:.1%}", pool_figures["throttled"],
             pool_figures["keys_ok"], pool_figures["keys_failed"], pool_figures["wall_s"]),
        ],
    )  # fmt: skip
    if pool["failures"]:
        print(f"pool failures: {pool['failures']}")
    write_json(
        options.json,
        "migrate",
        {"keys": options.keys, "rate_limit": options.rate_limit, "workers": options.workers,
         "threads": options.threads, "latency_ms": options.latency_ms,
         "apckx": migrate_figures, "pool": pool_figures},
    )  # fmt: skip


if __name__ == "__main__":
    main()
