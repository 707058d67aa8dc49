"""The cyclic garbage collector paused while a command starts (imports, the SDK client).

Importing botocore and cryptography and building a client allocate some 100,000 objects that
live as long as the process; the collector walks them over and over while they are created
(about 35 ms of CPU here, before the first call goes out) and frees nothing. The console
script pauses it (:func:`pause_gc`), and :func:`resume_gc` starts it again once the client is
built (:func:`apckx.service.client.make_client`) or a long-running command begins (the
emulator): what was allocated so far is moved to the permanent generation (``gc.freeze``) so
later collections skip it, and collection then runs as usual for the rest of the run.
In-process callers (tests) never pause it.
"""

from __future__ import annotations

import gc

_paused = False


def pause_gc() -> None:
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume_gc() -> None:
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
