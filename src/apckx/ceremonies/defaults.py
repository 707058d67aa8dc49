"""The KEK ceremony's names, defaults and choices: plain constants, nothing imported.

Kept apart from :mod:`apckx.ceremonies.import_kek` (which re-exports them) so that
``apckx import-kek --help`` can build its parser without loading the ceremony, the journal,
botocore or any cryptography: start-up is a target of its own (``bench/startup.py``).
"""

from __future__ import annotations

from pathlib import Path

# The AWS sample's aliases (import_raw_kek.py), so its users find their resources.
RECEIVER_ALIAS = "alias/import-kek-ecdh-receiver"
ROOT_ALIAS = "alias/import-kek-ecdh-sender-root"
KEK_ALIAS = "alias/import-kek-ecdh-result"
DEFAULT_HEADER = "D0000K0AB00E0000"

KEK_ALGORITHMS = ("AES_128", "AES_192", "AES_256", "TDES_2KEY", "TDES_3KEY")
KEK_USAGES = ("K0", "K1")
CURVE_CHOICES = ("P256", "P384", "P521")
KDF_CHOICES = ("NIST_SP800", "ANSI_X963")
KDF_HASH_CHOICES = ("SHA_256", "SHA_384", "SHA_512")
DERIVE_KEY_ALGORITHMS = ("AES_128", "AES_192", "AES_256", "TDES_2KEY", "TDES_3KEY")

DEFAULT_JOURNAL_DIR = Path(".apckx") / "ceremonies"
DEFAULT_RECORDS_DIR = Path(".apckx") / "records"
