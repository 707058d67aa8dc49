"""Crypto: TR-31 wrap/unwrap per second through ``apckx.crypto`` against psec called directly
(the ratio is our overhead), and ECDH + KDF per second per curve.

    .venv/bin/python bench/crypto.py [--seconds 1.5] [--json FILE]

Both sides are measured in the same process, one after another, on the same inputs.
"""

from __future__ import annotations

import argparse
import os
import warnings

import psec.tr31
from cryptography.hazmat.primitives.asymmetric import ec

from _common import compare_rates, print_table, write_json
from apckx.crypto.ecdh import CURVES, derive_kbpk, new_shared_info
from apckx.crypto.tr31 import unwrap_key_block, wrap_key_block

# (label, KBPK length, header, key length): the AWS sample's KEK block, a TDES working key
CASES = [
    ("D AES-256 KEK under AES-256", 32, "D0000K0AB00E0000", 32),
    ("D AES-128 key under AES-256", 32, "D0000D0AB00E0000", 16),
    ("B TDES-2 key under TDES-3", 24, "B0000P0TE00E0000", 16),
]
CURVE_DERIVE = {"P256": "AES_128", "P384": "AES_192", "P521": "AES_256"}


def bench_tr31(seconds: float) -> list[dict[str, object]]:
    results = []
    for label, kbpk_len, header, key_len in CASES:
        kbpk, key = os.urandom(kbpk_len), os.urandom(key_len)
        ours_block = wrap_key_block(kbpk, header, key)
        psec_block = psec.tr31.wrap(kbpk, header, key)
        assert unwrap_key_block(kbpk, psec_block)[1] == key  # interoperable both ways
        assert psec.tr31.unwrap(kbpk, ours_block)[1] == key
        wrap_ours, wrap_psec = compare_rates(
            [
                lambda: wrap_key_block(kbpk, header, key),  # noqa: B023
                lambda: psec.tr31.wrap(kbpk, header, key),  # noqa: B023
            ],
            seconds=2 * seconds,
        )
        unwrap_ours, unwrap_psec = compare_rates(
            [
                lambda: unwrap_key_block(kbpk, ours_block),  # noqa: B023
                lambda: psec.tr31.unwrap(kbpk, ours_block),  # noqa: B023
            ],
            seconds=2 * seconds,
        )
        results.append(
            {
                "case": label,
                "wrap_per_s": {"apckx": round(wrap_ours), "psec": round(wrap_psec)},
                "wrap_overhead": round(wrap_psec / wrap_ours, 2),
                "unwrap_per_s": {"apckx": round(unwrap_ours), "psec": round(unwrap_psec)},
                "unwrap_overhead": round(unwrap_psec / unwrap_ours, 2),
            }
        )
    return results


def bench_ecdh(seconds: float) -> list[dict[str, object]]:
    results = []
    shared_info = new_shared_info()
    for curve, derive_algorithm in CURVE_DERIVE.items():
        ours = ec.generate_private_key(CURVES[curve]())
        peer = ec.generate_private_key(CURVES[curve]()).public_key()
        for kdf in ("NIST_SP800", "ANSI_X963"):
            per_s, raw = compare_rates(
                [
                    lambda: derive_kbpk(
                        ours, peer, kdf=kdf, key_algorithm=derive_algorithm,  # noqa: B023
                        shared_info=shared_info,
                    ),
                    lambda: ours.exchange(ec.ECDH(), peer),  # noqa: B023
                ],
                seconds=2 * seconds,
            )  # fmt: skip
            results.append(
                {
                    "curve": curve,
                    "kdf": kdf,
                    "derive": derive_algorithm,
                    "per_s": round(per_s),
                    "raw_ecdh_per_s": round(raw),
                    "kdf_overhead": round(raw / per_s, 2),
                }
            )
    return results


def main() -> None:
    # psec's TDES goes through cryptography's deprecated alias; not what is measured here.
    warnings.filterwarnings("ignore", message="TripleDES has been moved")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.5, help="time per measurement")
    parser.add_argument("--json")
    options = parser.parse_args()
    tr31 = bench_tr31(options.seconds)
    print("TR-31 per second: apckx.crypto.tr31 vs psec.tr31 (ratio = psec / apckx)")
    print_table(
        ("case", "wrap apckx", "wrap psec", "ratio", "unwrap apckx", "unwrap psec", "ratio"),
        [
            (
                r["case"],
                r["wrap_per_s"]["apckx"],  # type: ignore[index]
                r["wrap_per_s"]["psec"],  # type: ignore[index]
                f"{r['wrap_overhead']}x",
                r["unwrap_per_s"]["apckx"],  # type: ignore[index]
                r["unwrap_per_s"]["psec"],  # type: ignore[index]
                f"{r['unwrap_overhead']}x",
            )
            for r in tr31
        ],
    )
    ecdh = bench_ecdh(options.seconds)
    print("\nECDH + KDF per second (derive_kbpk), against the bare ECDH exchange")
    print_table(
        ("curve", "kdf", "derives", "ECDH+KDF /s", "ECDH only /s", "ratio"),
        [
            (r["curve"], r["kdf"], r["derive"], r["per_s"], r["raw_ecdh_per_s"],
             f"{r['kdf_overhead']}x")
            for r in ecdh
        ],
    )  # fmt: skip
    write_json(options.json, "crypto", {"seconds": options.seconds, "tr31": tr31, "ecdh": ecdh})


if __name__ == "__main__":
    main()
