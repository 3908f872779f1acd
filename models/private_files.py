"""Files that hold a secret: written readable by their owner alone, and refused when read
if anyone else could read them too (as ssh refuses a private key others can read).

A secret given by file rather than in the config or on the command line stays out of the
logged config, `config show` and the process table.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class PrivateFileError(ValueError):
    """A secret's file is missing, empty or readable by others; the message names the
    setting that points at it."""


def read_private(path: str, key: str) -> str:
    """The stripped contents of ``path``, which ``key`` (a config key or a variable) names.

    Refused when the group or others have any access: a secret others could have read is
    no longer one, and saying so is better than trusting it.
    """
    file = Path(path).expanduser()
    try:
        mode = file.stat().st_mode
    except OSError as error:
        raise PrivateFileError(f"{key} {path}: {error.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PrivateFileError(f"{key} {path} is readable by others (mode "
                               f"{stat.S_IMODE(mode):o}): chmod 600 it")
    text = file.read_text().strip()
    if not text:
        raise PrivateFileError(f"{key} {path} is empty")
    return text


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` to ``path``, mode 0600 from its creation on (never readable by others,
    not even for a moment); an existing file is made private before it is rewritten."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(text)
    return path
