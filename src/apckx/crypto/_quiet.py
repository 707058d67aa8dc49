"""Silence the TDES deprecation warnings psec and pyemv trigger (cryptography moved TripleDES
to ``decrepit`` and deprecates 1- and 2-key TDES), around their calls and nowhere else.

Payment cryptography is TDES by definition (retail MAC, CVV, CVC3, EMV); a user of ``apckx
check`` or of the emulator should not see three warnings per call. The lock keeps
``warnings.catch_warnings`` (process-global state) from interleaving between threads.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from cryptography.utils import CryptographyDeprecationWarning

_LOCK = threading.RLock()


@contextmanager
def quiet_tdes() -> Iterator[None]:
    with _LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        yield
