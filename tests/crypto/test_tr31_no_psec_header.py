"""A TR-31 header without optional blocks is built and parsed without psec (so the checks
before a ceremony's first call load no cryptography); what comes out must be exactly what
psec's Header builds and accepts."""

from __future__ import annotations

import itertools
import json
import string
import subprocess
import sys

import pytest
from psec import tr31 as psec_tr31

from apckx.crypto import tr31
from apckx.crypto.attributes import KEY_USAGES, MODES
from apckx.crypto.keys import KEY_ALGORITHMS, is_hmac
from apckx.errors import InputError, KeyBlockError

_KBPKS = ("TDES_2KEY", "TDES_3KEY", "AES_128", "AES_192", "AES_256")
_CASES = [
    (usage, algorithm, kbpk, mode, exportability)
    for usage, algorithm, kbpk, mode, exportability in itertools.product(
        KEY_USAGES, [a for a in KEY_ALGORITHMS if not is_hmac(a)], _KBPKS, MODES, "ENS"
    )
]


def _psec_header(usage: str, algorithm: str, kbpk: str, mode: str, exportability: str) -> str:
    header = psec_tr31.Header(
        version_id="D" if kbpk.startswith("AES") else "B",
        key_usage=KEY_USAGES[usage],
        algorithm=algorithm[0],
        mode_of_use=mode,
        version_num="00",
        exportability=exportability,
    )
    masked = max(KEY_ALGORITHMS[algorithm], 32 if algorithm.startswith("AES") else 24)
    return str(header.dump(masked))


def test_every_valid_header_is_psecs() -> None:
    built = 0
    for usage, algorithm, kbpk, mode, exportability in _CASES:
        try:
            text = tr31.build_header(
                key_usage=usage, key_algorithm=algorithm, kbpk_algorithm=kbpk,
                modes_of_use=mode, exportability=exportability,
            )  # fmt: skip
        except (InputError, KeyBlockError):
            continue  # a combination APC refuses (checked by test_tr31/test_attributes)
        assert text == _psec_header(usage, algorithm, kbpk, mode, exportability)
        built += 1
    assert built > 50  # the loop above really compared headers


def test_the_sample_header_as_built() -> None:
    text = tr31.build_header(
        key_usage="K0", key_algorithm="AES_256", kbpk_algorithm="AES_256", modes_of_use="B"
    )
    assert text == "D0144K0AB00E0000"


@pytest.mark.parametrize(
    "fixed",
    ["D0144K0AB00E0000", "D0144K0AB00E00AZ", "D0144K0AB00E00a0", "D0144K0AB00E00-0",
     "B0080K0TB00E0000", "D0144K0AB0 E0000", "X0144K0AB00E0000"],
)  # fmt: skip
def test_parse_without_blocks_agrees_with_psec(fixed: str) -> None:
    try:
        psec_tr31.Header().load(fixed)
        psec_ok = True
    except psec_tr31.HeaderError:
        psec_ok = False
    try:
        ours = tr31.parse_header(fixed)
    except KeyBlockError:
        assert not psec_ok or fixed[0] not in "ABCD" or fixed != fixed.upper()
        return
    assert psec_ok
    assert ours.raw == fixed
    assert ours.optional_blocks == ()


def test_random_fixed_parts_never_accepted_where_psec_refuses() -> None:
    alphabet = string.ascii_uppercase + string.digits + "a-_ "
    import random

    rng = random.Random(12)  # deterministic, bounded
    for _ in range(2000):
        fixed = "D0144" + "".join(rng.choice(alphabet) for _ in range(7)) + "00" + "".join(
            rng.choice(alphabet) for _ in range(2)
        )
        try:
            tr31.parse_header(fixed)
        except KeyBlockError:
            continue
        psec_tr31.Header().load(fixed)  # psec accepts what we accept


def test_header_checks_load_no_cryptography() -> None:
    code = (
        "import json, sys\n"
        "from apckx.crypto import tr31, ecdh\n"
        "tr31.parse_header(tr31.build_header(key_usage='K0', key_algorithm='AES_256',"
        " kbpk_algorithm='AES_256'))\n"
        "ecdh.check_ecdh_strength('P521', 'AES_256', 'AES_256')\n"
        "print(json.dumps(sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('cryptography', 'psec'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(result.stdout) == []
