"""The emulator's own files (state, request log): owner-only, whatever the umask or the
mode an existing file had."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from apckx.errors import ConfigError


def restrict_file_mode(path: Path, *, what: str, create: bool = True) -> None:
    """Create ``path`` (0600) or force an existing one to 0600, refusing a symbolic link, a
    file that is not regular and one owned by another user (:class:`ConfigError`)."""
    flags = os.O_WRONLY | os.O_NOFOLLOW | (os.O_CREAT if create else 0)
    try:
        descriptor = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(f"{what} {path} is a symbolic link; give the real file") from None
        raise ConfigError(f"cannot open {what} {path}: {exc.strerror}") from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{what} {path} is not a regular file")
        if info.st_uid != os.geteuid():
            raise ConfigError(f"{what} {path} belongs to another user; use a file of your own")
        if stat.S_IMODE(info.st_mode) != 0o600:
            os.fchmod(descriptor, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot restrict {what} {path} to mode 0600: {exc.strerror}") from None
    finally:
        os.close(descriptor)
