"""The data plane under load: 8 concurrent boto3 clients against one emulator.

The emulator runs as its own process (``apckx emulator serve --port 0``). The clients are
boto3 ``payment-cryptography-data`` clients, spread over ``--processes`` processes (one
each by default: one Python process cannot drive 8 botocore clients past the GIL, and each
call costs the client more CPU than the server). Every client is built and warmed up before
the clock starts (a barrier across the processes). Each client loops over a mix of calls for
``--seconds``:

    GenerateMac (CMAC), VerifyMac, EncryptData (AES CBC), GenerateCardValidationData (CVV2),
    VerifyCardValidationData

(operations the emulator does not serve yet are left out of the mix, and the table says so).
Then the same clients call the control plane (GetKey) for as long, for its rate beside the
data plane's. Figures: calls per second over the run, errors, p50/p99 latency per call as the
client sees it, the emulator's CPU seconds per call, and the machine's load average.

    .venv/bin/python bench/dataplane.py [--clients 8] [--processes 8] [--seconds 10]
                                        [--json FILE]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
from pathlib import Path
from typing import Any

from _common import REGION, emulator, print_table, set_aws_env, write_json

TARGET_CALLS_PER_S = 500
D0 = "TR31_D0_SYMMETRIC_DATA_ENCRYPTION_KEY"
M6 = "TR31_M6_ISO_9797_5_CMAC_KEY"
C0 = "TR31_C0_CARD_VERIFICATION_KEY"
MESSAGE = "4D657373616765" * 8 + "00" * 8
PAN = "4123456789012345"


def make_client(url: str, service: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        service, endpoint_url=url, region_name=REGION,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1},
                      max_pool_connections=2, tcp_keepalive=True),
    )


def create_keys(url: str) -> dict[str, str]:
    control = make_client(url, "payment-cryptography")
    wrap = {"Encrypt": True, "Decrypt": True, "Wrap": True, "Unwrap": True}

    def create(usage: str, algorithm: str, modes: dict[str, bool]) -> str:
        arn: str = control.create_key(
            KeyAttributes={"KeyUsage": usage, "KeyClass": "SYMMETRIC_KEY",
                           "KeyAlgorithm": algorithm, "KeyModesOfUse": modes},
            Exportable=False)["Key"]["KeyArn"]
        return arn

    return {
        "d0": create(D0, "AES_128", wrap),
        "m6": create(M6, "AES_128", {"Generate": True, "Verify": True}),
        "c0": create(C0, "TDES_2KEY", {"Generate": True, "Verify": True}),
        "get_key": create(D0, "AES_128", wrap),
    }


def data_calls(data: Any, keys: dict[str, str]) -> list[tuple[str, Any]]:
    """The mix, as (operation, zero-argument call); operations not served are dropped."""
    from apckx.emulator import data as data_plane

    served = data_plane.IMPLEMENTED_OPERATIONS
    mac_attributes = {"Algorithm": "CMAC"}
    cvv2 = {"CardVerificationValue2": {"CardExpiryDate": "1230"}}
    calls: list[tuple[str, Any]] = []
    if "GenerateMac" in served:
        mac = data.generate_mac(KeyIdentifier=keys["m6"], MessageData=MESSAGE,
                                GenerationAttributes=mac_attributes)["Mac"]
        calls.append(("GenerateMac", lambda: data.generate_mac(
            KeyIdentifier=keys["m6"], MessageData=MESSAGE, GenerationAttributes=mac_attributes)))
        calls.append(("VerifyMac", lambda: data.verify_mac(
            KeyIdentifier=keys["m6"], MessageData=MESSAGE, Mac=mac,
            VerificationAttributes=mac_attributes)))
    calls.append(("EncryptData", lambda: data.encrypt_data(
        KeyIdentifier=keys["d0"], PlainText=MESSAGE,
        EncryptionAttributes={"Symmetric": {"Mode": "CBC"}})))
    if "GenerateCardValidationData" in served:
        cvv = data.generate_card_validation_data(
            KeyIdentifier=keys["c0"], PrimaryAccountNumber=PAN,
            GenerationAttributes=cvv2)["ValidationData"]
        calls.append(("GenerateCardValidationData", lambda: data.generate_card_validation_data(
            KeyIdentifier=keys["c0"], PrimaryAccountNumber=PAN, GenerationAttributes=cvv2)))
        calls.append(("VerifyCardValidationData", lambda: data.verify_card_validation_data(
            KeyIdentifier=keys["c0"], PrimaryAccountNumber=PAN, ValidationData=cvv,
            VerificationAttributes=cvv2)))
    return calls


def build_client(url: str, keys: dict[str, str], plane: str) -> list[tuple[str, Any]]:
    """One client and its calls, warmed up (connection made, botocore's caches filled)."""
    if plane == "data":
        client = make_client(url, "payment-cryptography-data")
        calls = data_calls(client, keys)
    else:
        client = make_client(url, "payment-cryptography")
        calls = [("GetKey", lambda: client.get_key(KeyIdentifier=keys["get_key"]))]
    for _, call in calls:
        call()
    return calls


def run_client(calls: list[tuple[str, Any]], seconds: float, index: int) -> dict[str, Any]:
    """One client's loop for ``seconds``: latencies (s) and error names."""
    latencies: list[float] = []
    errors: list[str] = []
    end = time.perf_counter() + seconds
    position = index  # the clients start at different points of the mix
    while True:
        t0 = time.perf_counter()
        if t0 >= end:
            break
        _, call = calls[position % len(calls)]
        position += 1
        try:
            call()
        except Exception as exc:  # count every failure: the target is 0
            errors.append(type(exc).__name__)
        latencies.append(time.perf_counter() - t0)
    return {"latencies": latencies, "errors": errors,
            "operations": [name for name, _ in calls]}


def run_process(url: str, keys: dict[str, str], plane: str, seconds: float, first_index: int,
                threads: int, ready: Any, results: Any) -> None:
    """A client process: build and warm up its clients, wait for every process, then run
    them in threads for ``seconds``."""
    import concurrent.futures

    clients = [build_client(url, keys, plane) for _ in range(threads)]
    ready.wait(timeout=300)
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(run_client, calls, seconds, first_index + i)
                   for i, calls in enumerate(clients)]
        results.put([future.result() for future in futures])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(url: str, keys: dict[str, str], plane: str, *, clients: int, processes: int,
            seconds: float, server_pid: int) -> dict[str, Any]:
    per_process = [clients // processes + (1 if i < clients % processes else 0)
                   for i in range(processes)]
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(processes + 1)  # every client built and warmed up
    queue = context.Queue()
    workers = []
    first = 0
    for threads in per_process:
        workers.append(context.Process(target=run_process, args=(
            url, keys, plane, seconds, first, threads, ready, queue)))
        first += threads
    for worker in workers:
        worker.start()
    ready.wait(timeout=300)
    cpu_before, load_before = cpu_seconds(server_pid), os.getloadavg()[0]
    results = [client for _ in workers for client in queue.get(timeout=seconds + 120)]
    cpu_after = cpu_seconds(server_pid)
    for worker in workers:
        worker.join()
    latencies = sorted(value for client in results for value in client["latencies"])
    errors = [name for client in results for name in client["errors"]]
    calls = len(latencies)
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "plane": plane, "clients": clients, "processes": processes, "seconds": seconds,
        "calls": calls, "calls_per_s": round(calls / seconds, 1), "errors": len(errors),
        "error_names": sorted(set(errors)), "p50_ms": round(quantiles[49] * 1000, 2),
        "p99_ms": round(quantiles[98] * 1000, 2),
        "server_cpu_ms_per_call": round((cpu_after - cpu_before) * 1000 / max(calls, 1), 3),
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "operations": results[0]["operations"] if results else [],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--json")
    options = parser.parse_args()
    set_aws_env()
    with emulator() as running:
        keys = create_keys(running.url)
        server_pid = running.process.pid
        figures = [measure(running.url, keys, plane, clients=options.clients,
                           processes=options.processes, seconds=options.seconds,
                           server_pid=server_pid)
                   for plane in ("data", "control")]
    data_figure = figures[0]
    print(f"{options.clients} boto3 clients in {options.processes} processes, "
          f"{options.seconds:g} s per plane, {os.cpu_count()} CPUs")
    print("data-plane mix: " + ", ".join(data_figure["operations"]))
    print_table(
        ["plane", "calls/s", "errors", "p50 ms", "p99 ms", "server CPU ms/call", "load avg"],
        [[f["plane"], f["calls_per_s"], f["errors"], f["p50_ms"], f["p99_ms"],
          f["server_cpu_ms_per_call"], f"{f['load_average_before']}->{f['load_average_after']}"]
         for f in figures],
    )
    met = data_figure["calls_per_s"] >= TARGET_CALLS_PER_S and data_figure["errors"] == 0
    print(f"target >= {TARGET_CALLS_PER_S} data-plane calls/s with 0 errors: "
          f"{'met' if met else 'NOT met'}")
    write_json(options.json, "dataplane", {"figures": figures, "target_met": met,
                                           "target_calls_per_s": TARGET_CALLS_PER_S})


if __name__ == "__main__":
    main()
