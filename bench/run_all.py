"""Run every benchmark and write ``bench/RESULTS.md`` (``make bench``).

Each benchmark runs as its own process, starts its own emulator on 127.0.0.1, prints its
table and writes its figures as JSON under ``bench/out/``; this script then renders them, with
the machine and the exact command behind each figure, into ``bench/RESULTS.md``.

    .venv/bin/python bench/run_all.py [--only ceremony,migrate] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from typing import Any

from _common import BENCH_DIR, OUT_DIR, machine

BENCHES: dict[str, list[str]] = {
    "startup": ["--repeat", "9"],
    "crypto": ["--seconds", "1.5"],
    "ceremony": ["--rounds", "3", "--latency-ms", "50"],
    # The same at a higher round-trip time: how the fixed costs weigh as latency grows.
    "ceremony-150ms": ["--rounds", "1", "--latency-ms", "150"],
    "migrate": ["--keys", "500", "--rate-limit", "50"],
    "dataplane": ["--clients", "8", "--processes", "2", "--seconds", "10"],
    # Whole processes side by side, interpreter start included: the targets of issue 12.
    "process": ["--rounds", "5", "--latency-ms", "100"],
}


def script(name: str) -> str:
    return name.split("-")[0]


CEREMONY_ANALYSIS = """\
**Round trips.** A fresh ceremony is 4 calls one after another, the least its data flow
allows: CreateKey gives the receiver's ARN, GetPublicKeyCertificate needs it, the KEK's
ImportKey needs APC's certificate, and the KEK's alias must wait for APC's KCV to equal ours.
Everything else runs beside those four (the root's ImportKey, the other aliases, the check of
where the KEK alias points). A repeat ceremony is 3: the alias lookups, APC's certificate and
the root's tags in one round trip (the certificate and tags asked for the ARNs the last
ceremony found, `certs/apc-parties.json`, and used only if the lookups name the same ARNs),
then ImportKey, then the alias. It cannot be 2 without sending ImportKey before knowing where
the KEK alias points, which import-kek refuses to do (an alias already naming this KEK imports
nothing; one naming another key needs `--replace`). The repeat run imports another KEK onto
the same alias with `--replace`, as the sample's second run moves its alias; the same KEK again
would import nothing at all.
**Fixed costs.** Before its first call apckx pays argparse, its local checks (psec and
cryptography imported for them), botocore's import and the client (no boto3: its import costs
~180 ms, mostly s3transfer; the data loader finds services by name and reads botocore's
1.2 MB endpoints.json from a private marshal copy), the journal's creation and the first
request. The journal's durable saves are the largest single in-process cost on this disk
under load (see "fsync (last run)" and the diagnostic run without fsync). The whole-process
figures (`process` below) include the interpreter's start; on
this shared 2-core machine every CPU-bound fixed cost is inflated by the other engineers'
test suites, which hurts apckx (4 round trips to hide CPU behind) more than the sample (13)."""


DATAPLANE_ANALYSIS = """\
Where the time goes: a boto3 call costs its client about 1.2 ms of CPU and the emulator 0.5 to
0.9 ms (signature check, HTTP parsing, validation, the cryptography: about 0.2 ms of it is the
data-plane pipeline itself on a quiet core). On 2 cores the emulator, one process, is what
every call waits for, so the clients run as 2 processes of 4 threads: 8 client processes took
CPU from it and lowered the rate (runs one after another on the shared machine, load 4 to 9:
8 processes x 1 client 286 calls/s, 4 x 2 334, 2 x 4 392 to 698, 1 x 8 577). The rate moves
with what else runs on the machine (the 1-minute load average above counts this benchmark's
own processes too); the server's CPU per call is the steadier figure."""


def command_line(name: str) -> str:
    return " ".join([".venv/bin/python", f"bench/{script(name)}.py", *BENCHES[name]])


def run_bench(name: str) -> tuple[dict[str, Any], str, float]:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    json_path = OUT_DIR / f"{name}.json"
    json_path.unlink(missing_ok=True)
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(BENCH_DIR / f"{script(name)}.py"), *BENCHES[name], "--json",
         str(json_path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    print(done.stdout, end="")
    (OUT_DIR / f"{name}.txt").write_text(done.stdout)
    (OUT_DIR / f"{name}.seconds").write_text(f"{seconds:.1f}")
    (OUT_DIR / f"{name}.load").write_text(f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}")
    if done.returncode != 0:
        raise SystemExit(f"bench/{name}.py failed:\n{done.stderr[-3000:]}")
    return json.loads(json_path.read_text()), done.stdout, seconds


def render(results: dict[str, tuple[dict[str, Any], str, float]]) -> str:
    info = machine()
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# apckx benchmarks: latest figures",
        "",
        f"Generated by `.venv/bin/python bench/run_all.py` (`make bench`) on {when}.",
        "",
        f"Machine: {info['nproc']} CPUs ({info['cpu']}), Python {info['python']}, "
        f"{info['platform']}. The machine is shared (other test suites ran at the same time), so "
        "absolute times wobble; every ratio is measured side by side in one run, the two sides "
        "interleaved or back to back against the same emulator.",
        "",
    ]
    for name, (data, stdout, seconds) in results.items():
        load_file = OUT_DIR / f"{name}.load"
        load = load_file.read_text() if load_file.exists() else "not recorded"
        lines += [f"## {name}", "", f"Command: `{command_line(name)}` ({seconds:.0f} s; machine "
                  f"load average over 1 min, before -> after: {load}, on {info['nproc']} "
                  "CPUs)", ""]  # fmt: skip
        lines += ["```", stdout.rstrip(), "```", ""]
        lines += notes(name, data)
    return "\n".join(lines).rstrip() + "\n"


def notes(name: str, data: dict[str, Any]) -> list[str]:
    """The figures each target is judged by, pulled out of the JSON."""
    if name == "startup":
        lines = []
        for label, fig in data["figures"].items():
            if label == "python -c pass":
                continue
            heavy = fig["heavy_imports"]
            slow = ", ".join(f"{m} {ms:g} ms" for m, ms in fig["slowest_apckx_modules_ms"])
            lines.append(
                f"- `{label}`: heavy packages imported: "
                f"{', '.join(f'{k} (via {v})' for k, v in heavy.items()) or 'none'}; "
                f"largest self import times (`-X importtime`): {slow}."
            )
        return [*lines, "- boto3, botocore, cryptography and psec load only when a command "
                "runs; what `--help` pays beyond the interpreter is argparse and apckx's own "
                "modules.", ""]  # fmt: skip
    if name == "crypto":
        worst = max(data["tr31"], key=lambda r: max(r["wrap_overhead"], r["unwrap_overhead"]))
        return [
            f"- Our TR-31 layer over psec costs at most {max(worst['wrap_overhead'], worst['unwrap_overhead'])}x "  # noqa: E501
            f"({worst['case']}): the header checks (APC's attribute and strength rules), "
            "constant-time MAC comparison and injectable padding run on every call.",
            "- ECDH + KDF: the KDF adds little to the curve operation; P-256 is the fastest, "
            "P-384 and P-521 are within the noise of each other here (OpenSSL's P-521 code is "
            "optimised).",
            "",
        ]
    if name == "ceremony-150ms":
        summary = data["summary"]
        return [
            f"- At 150 ms a round trip: fresh ratio **{summary['fresh']['ratio']:.2f}x**, "
            f"repeat {summary['repeat']['ratio']:.2f}x (one round).",
            "",
        ]
    if name == "ceremony":
        summary = data["summary"]
        fresh, repeat = summary["fresh"], summary["repeat"]
        return [
            f"- Fresh ceremony: AWS sample {fresh['sample']['calls']} calls, "
            f"{fresh['sample']['in_sequence']} in sequence, {fresh['sample']['wall_ms']:.0f} ms; "
            f"apckx {fresh['apckx']['calls']} calls, {fresh['apckx']['in_sequence']} in sequence, "
            f"{fresh['apckx']['wall_ms']:.0f} ms. **Ratio {fresh['ratio']:.2f}x** wall "
            f"({fresh['calls_span_ratio']:.2f}x first call to last call).",
            f"- Second run: sample {repeat['sample']['calls']} calls / "
            f"{repeat['sample']['in_sequence']} in sequence, apckx {repeat['apckx']['calls']} / "
            f"{repeat['apckx']['in_sequence']} (receiver reused: "
            f"{repeat['apckx']['receiver_reused']}, root reused: {repeat['apckx']['root_reused']})"
            f". **Ratio {repeat['ratio']:.2f}x** wall ({repeat['calls_span_ratio']:.2f}x span).",
            f"- As processes (interpreter start and imports included): sample "
            f"{data['processes']['sample_ms']:.0f} ms, apckx {data['processes']['apckx_ms']:.0f} "
            f"ms, ratio {data['processes']['ratio']:.2f}x.",
            f"- Where apckx's fresh-run time goes (medians): "
            f"{fresh['apckx']['before_first_call_ms']:.0f} ms before its first call (the sample: "
            f"{fresh['sample']['before_first_call_ms']:.0f} ms; each builds its SDK client there), "
            f"{fresh['apckx']['calls_span_ms']:.0f} ms from first call to last (the sample: "
            f"{fresh['sample']['calls_span_ms']:.0f} ms), "
            f"{fresh['apckx']['after_last_call_ms']:.0f} ms after (audit record). The journal's "
            f"fsyncs: {fresh['apckx']['fsync']['count']} taking "
            f"{fresh['apckx']['fsync']['ms']:.0f} ms in the last fresh run. Diagnostic run with "
            f"fsync skipped: {summary['apckx_fresh_fsync_skipped']['wall_ms']:.0f} ms.",
            "",
            CEREMONY_ANALYSIS,
            "",
        ]
    if name == "dataplane":
        data_figure, control = data["figures"]
        return [
            f"- Data plane ({', '.join(data_figure['operations'])}): "
            f"**{data_figure['calls_per_s']} calls/s, {data_figure['errors']} errors** from "
            f"{data_figure['clients']} boto3 clients (target >= {data['target_calls_per_s']} "
            f"with 0 errors: {'met' if data['target_met'] else 'NOT met'}); p50 "
            f"{data_figure['p50_ms']} ms, p99 {data_figure['p99_ms']} ms; the emulator spent "
            f"{data_figure['server_cpu_ms_per_call']} ms of CPU per call.",
            f"- Control plane (GetKey) from the same clients: {control['calls_per_s']} calls/s, "
            f"p50 {control['p50_ms']} ms, p99 {control['p99_ms']} ms.",
            f"- Load average during the run: {data_figure['load_average_before']} -> "
            f"{control['load_average_after']} on {data_figure['clients']} clients + the "
            "emulator + whatever else shared the machine.",
            "",
            DATAPLANE_ANALYSIS,
            "",
        ]
    if name == "process":
        wall, calls, seq = data["wall_ms"], data["calls"], data["in_sequence"]
        return [
            f"- Fresh `apckx import-kek` against the AWS sample, both as whole processes at "
            f"{data['latency_ms']:g} ms a round trip: sample {wall['sample']:.0f} ms "
            f"({calls['sample']} calls, {seq['sample']} in sequence), apckx {wall['fresh']:.0f} "
            f"ms ({calls['fresh']} calls, {seq['fresh']} in sequence): **ratio "
            f"{data['ratio_sample_to_fresh']:.2f}x** (target: at least 2.5x).",
            f"- CPU time (user + system) of the same processes: sample "
            f"{data['cpu_ms']['sample']:.0f} ms, apckx fresh {data['cpu_ms']['fresh']:.0f} ms: "
            f"ratio {data['cpu_ratio_sample_to_fresh']:.2f}x (wall ratios move with the "
            "machine's load, CPU per process less so).",
            f"- The same `apckx import-kek` again (the alias already names that KEK, nothing is "
            f"imported): {wall['again']:.0f} ms, {calls['again']} calls, **{seq['again']} in "
            "sequence** (target for a repeat ceremony: at most 2).",
            f"- A repeat ceremony of another KEK onto the same alias (`--replace`; same certs "
            f"dir, receiver and root reused): {wall['repeat']:.0f} ms, {calls['repeat']} calls, "
            f"**{seq['repeat']} in sequence** (target: at most 2, not met: ImportKey waits for "
            "the check of where the alias points, see ceremony); ratio to the sample "
            f"{data['ratio_sample_to_repeat']:.2f}x.",
            f"- `apckx import-kek --help` {wall['help']:.0f} ms against `python -c pass` "
            f"{wall['python']:.0f} ms: **{data['ratio_help_to_python']:.2f}x** (target: at "
            "most 5x).",
            "",
        ]
    if name == "migrate":
        ours, pool = data["apckx"], data["pool"]
        return [
            f"- `apckx migrate`: {ours['ok_calls_per_s']} successful calls/s = "
            f"**{ours['fraction_of_limit']:.1%} of the limit**, {ours['throttled']} throttled, "
            f"**{ours['keys_failed']} keys failed** of {data['keys']}.",
            f"- Unpaced pool of {data['threads']} threads: {pool['ok_calls_per_s']} successful "
            f"calls/s = {pool['fraction_of_limit']:.1%} of the limit, {pool['throttled']} "
            f"throttled, **{pool['keys_failed']} keys failed** ({pool['failures'] or 'none'}).",
            "",
        ]
    return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", help="comma-separated subset of " + ", ".join(BENCHES))
    parser.add_argument("--no-write", action="store_true", help="do not rewrite RESULTS.md")
    parser.add_argument(
        "--render-only", action="store_true",
        help="rewrite RESULTS.md from the last run's bench/out files, running nothing",
    )  # fmt: skip
    options = parser.parse_args()
    names = options.only.split(",") if options.only else list(BENCHES)
    unknown = set(names) - set(BENCHES)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    results = {}
    for name in names:
        if options.render_only:
            results[name] = (
                json.loads((OUT_DIR / f"{name}.json").read_text()),
                (OUT_DIR / f"{name}.txt").read_text(),
                float((OUT_DIR / f"{name}.seconds").read_text()),
            )
            continue
        print(f"== bench/{name}.py", flush=True)
        results[name] = run_bench(name)
    if not options.no_write:
        path = BENCH_DIR / "RESULTS.md"
        path.write_text(render(results))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
