"""Writing and reading the harness's files: atomic writes, JSON that names
the file when it is damaged, one way to warn."""
import json
import math
import os
import os.path as osp
import sys
import tempfile
import time
from typing import IO, Callable, Iterable, Optional


def atomic_write(path: str, write: Callable[[IO], None],
                 binary: bool = False) -> None:
    """Write ``path`` through ``write(file)`` so readers see the old or the
    new file, never a part of it."""
    directory = osp.dirname(osp.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix='.tmp-')
    except OSError as e:
        # A read-only or full place: name the file the caller meant.
        raise OSError(e.errno, e.strerror, path) from None
    try:
        with os.fdopen(fd, 'wb' if binary else 'w') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if osp.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError) and e.filename in (None, tmp):
            # Name the file the caller meant, not the temporary one.
            raise OSError(e.errno, e.strerror, path) from None
        raise


def atomic_write_text(path: str, text: str) -> None:
    atomic_write(path, lambda f: f.write(text))


def atomic_write_json(path: str, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=str))


def warn(message: str) -> None:
    """One line on stderr: something was wrong and was dealt with."""
    print(f'warning: {message}', file=sys.stderr)


class DamagedFileError(ValueError):
    """A file the harness wrote no longer reads back; names the file."""


def read_json(path: str) -> Optional[dict]:
    """The JSON object in ``path``, or None when there is no such file.

    Raises:
        DamagedFileError: The file is not a JSON object (truncated,
            overwritten, binary).
    """
    if not osp.isfile(path):
        return None
    try:
        with open(path, 'rb') as f:
            obj = json.loads(f.read().decode('utf-8'))
    except ValueError as e:  # UnicodeDecodeError is one too
        raise DamagedFileError(f'{path}: damaged, not valid JSON '
                               f'({str(e).splitlines()[0][:80]})') from None
    if not isinstance(obj, dict):
        raise DamagedFileError(f'{path}: damaged, holds a JSON '
                               f'{type(obj).__name__}, not an object')
    return obj


def set_aside(path: str) -> str:
    """Rename a damaged file to ``<name>.damaged-<time>``; return the name.

    Kept, not deleted: it may be worth a look, and nothing is ever lost.
    """
    target = f'{path}.damaged-{time.strftime("%Y%m%dT%H%M%S")}'
    os.replace(path, target)
    return target


def is_number(value) -> bool:
    """An int or float, not a bool (JSON true is no number)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def finite_numbers(values: Iterable) -> bool:
    """Every value is a finite number (no NaN, no infinity, no string)."""
    return all(is_number(v) and math.isfinite(v) for v in values)
