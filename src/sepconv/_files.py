"""Files are written whole or not at all: one helper for every writer in the package."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

__all__ = ["atomic_write"]


def atomic_write(path: str | os.PathLike[str], write: Callable[[str], Any]) -> None:
    """Call ``write(temporary_path)``, then move the temporary file onto ``path``.

        The temporary file lies in the destination folder (so the final ``os.replace`` is atomic),
        gets the permissions a newly created file would (``mkstemp`` makes it private), and is
        removed if ``write`` fails: a reader sees the old file or the whole new one, never a part.
    An ``OSError`` of the operating system names ``path``, never the temporary file.

    Raises
    ------
    FileNotFoundError
        The destination folder does not exist.
    OSError
        The file cannot be written (permissions, a full disk, a read-only folder), with ``path``
        in the message.

        Examples
        --------
        >>> import os, tempfile
        >>> folder = tempfile.mkdtemp()
        >>> target = os.path.join(folder, "note.txt")
        >>> atomic_write(target, lambda tmp: open(tmp, "w").write("whole"))
        >>> open(target).read(), os.listdir(folder)
        ('whole', ['note.txt'])
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"the folder of {path!r} does not exist")
    base, suffix = os.path.splitext(os.path.basename(path))
    temporary = None
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{base}.", suffix=suffix, dir=folder)
        os.close(handle)
        write(temporary)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except OSError as exc:
        ours = os.path.join(folder, f".{base}.")
        if not (isinstance(exc.filename, str) and exc.filename.startswith(ours)):
            raise
        # The temporary file is an implementation detail: name the file the caller asked for.
        raise type(exc)(exc.errno, f"cannot write {path!r}: {exc.strerror}") from None
    finally:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)
