"""Write files atomically: a temp file in the same folder, flushed, then renamed over the target.

A crash mid-write leaves the old file or the new one, never half of one. The new file gets the
mode an ordinary ``open(path, "w")`` would give it: ``0o666`` less the process's umask (0644
under the usual umask 022), or, when the target already exists, the target's own permission
bits (as a shell's ``>`` keeps them).

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
>>> write_atomic(p, "hello\\n")
>>> p.read_text()
'hello\\n'
>>> oct(p.stat().st_mode & 0o777) == oct(0o666 & ~current_umask())
True
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: read it by setting it, and put it back at once
    os.umask(mask)
    return mask


def new_file_mode(path) -> int:
    """The permission bits for ``path``: those of the file already there, else 0o666 less the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~current_umask()


def write_atomic(path, data: str | bytes) -> None:
    """Replace ``path`` with ``data`` (text is written as UTF-8) in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    mode = new_file_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            if hasattr(os, "fchmod"):  # mkstemp makes the file 0600; give it the usual mode
                os.fchmod(f.fileno(), mode)
            else:  # pragma: no cover - Windows before Python 3.13
                os.chmod(tmp, mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
