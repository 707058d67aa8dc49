"""Suite-wide set-up.

``apckx._cli.main`` disables core dumps for its process (``RLIMIT_CORE`` 0, hard limit
included, and not dumpable). Tests call ``main([...])`` in-process, fixtures of every scope
included, so without this the first such call would lower the pytest process's own hard limit
for good, and every child process started after it (the core-dump probe in
``tests/hardening/test_process_hardening.py`` among them) would inherit a limit it cannot
raise. In-process calls keep the limits they found; the real hardening is tested in child
processes, where it runs unpatched.
"""

from __future__ import annotations

import sys
from pathlib import Path

import apckx._cli

# ``support`` (tests/support/): helpers test modules share; importlib mode puts no test
# directory on sys.path by itself.
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _leave_limits_alone() -> bool:
    return True


apckx._cli.disable_core_dumps = _leave_limits_alone
