"""Process and file hardening that must happen before any key is read.

* :func:`disable_core_dumps`: a crash (SIGQUIT at a masked prompt, SIGSEGV in a C extension)
  must not write the typed key components into a core file. ``RLIMIT_CORE`` is set to 0 and,
  on Linux, ``PR_SET_DUMPABLE`` to 0 (which also keeps other processes of the same user from
  ptrace-attaching and reading ``/proc/PID/mem``).
* :func:`read_regular_file`: a file that is meant to be a file, opened once, checked on the
  descriptor (``fstat``: a regular file, not too large) and read at most ``limit + 1`` bytes;
  ``@/dev/zero``, a FIFO or a directory is refused before a single byte is read.

Standard library only, and cheap: ``_cli.main`` calls :func:`disable_core_dumps` first thing.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from typing import NamedTuple

from apckx.errors import InputError

_PR_SET_DUMPABLE = 4  # <linux/prctl.h>


def disable_core_dumps() -> bool:
    """No core file, and (Linux) not dumpable; returns True when both took effect where
    available. Never raises: a platform without these controls just keeps its defaults."""
    done = True
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):
        done = False
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
                done = False
        except (OSError, AttributeError):
            done = False
    return done


class FileContent(NamedTuple):
    """What :func:`read_regular_file` read, with the descriptor's ``fstat``.

    (A NamedTuple, not a dataclass: ``_cli`` imports this module first thing, and
    ``dataclasses`` with ``inspect`` costs every command's start-up.)
    """

    data: bytes
    mode: int  # st_mode
    uid: int


def read_regular_file(
    path: str | os.PathLike[str],
    *,
    limit: int,
    what: str,
    follow_symlinks: bool = True,
) -> FileContent:
    """Open ``path`` once, ``fstat`` the descriptor, read at most ``limit + 1`` bytes.

    Refuses (``InputError``, one line naming ``what`` and the path) a missing file, a
    directory, a device, a FIFO or a socket, and a file larger than ``limit`` bytes (also when
    it grows while being read). ``follow_symlinks=False`` opens with ``O_NOFOLLOW``.
    """
    name = os.fspath(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    flags |= getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(name, flags)  # O_NONBLOCK: opening a FIFO must not wait for a writer
    except FileNotFoundError:
        raise InputError(f"{what}: no such file: {name}") from None
    except IsADirectoryError:
        raise InputError(f"{what}: {name} is a directory, not a regular file") from None
    except PermissionError:
        raise InputError(f"{what}: permission denied reading {name}") from None
    except OSError as exc:
        if not follow_symlinks and os.path.islink(name):
            raise InputError(f"{what}: {name} is a symbolic link: give the file itself") from None
        raise InputError(f"{what}: cannot open {name}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise InputError(f"{what}: {name} is a directory, not a regular file")
        if not stat.S_ISREG(info.st_mode):
            raise InputError(
                f"{what}: {name} is not a regular file (a device, pipe or socket): "
                "give a file, or '-' to read stdin where the option allows it"
            )
        if info.st_size > limit:
            raise InputError(f"{what}: {name} is too large (more than {limit} bytes)")
        with contextlib.suppress(OSError):
            os.set_blocking(fd, True)
        chunks: list[bytes] = []
        remaining = limit + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:
            raise InputError(f"{what}: {name} is too large (more than {limit} bytes)")
        return FileContent(data, info.st_mode, info.st_uid)
    except OSError as exc:
        raise InputError(f"{what}: cannot read {name}: {exc.strerror}") from None
    finally:
        os.close(fd)
