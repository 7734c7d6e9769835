"""One lock per run directory, so two runner processes never train one run.

The lock is an ``flock`` on ``<run dir>/.lock``. The kernel releases it when
the last process holding the file open exits, however it exits (SIGKILL,
out-of-memory kill, node reboot for a local disk), so a dead runner never
leaves a stale lock behind and no lock file ever has to be cleaned up by hand.

On a cluster the work dir must be on a file system whose ``flock`` is seen
by every node: Linux NFS (v4, or v3 with ``local_lock=none``), Lustre mounted
with ``flock``, GPFS. The run's ``FINISHED.json`` stays the source of truth:
a run that finds it skips, locked or not.
"""
import fcntl
import os
import os.path as osp
from typing import Optional

LOCK_FILE = '.lock'
# A child that inherits the parent's lock reads its descriptor number here.
LOCK_FD_ENV = 'RUN_GRID_LOCK_FD'


class RunLockedError(RuntimeError):
    """The run is being trained by another process."""


class RunLock:
    """A non-blocking exclusive lock on one run directory.

    Args:
        run_dir: The run's work directory (created if missing).
    """

    def __init__(self, run_dir: str) -> None:
        self.run_dir = run_dir
        self.fd: Optional[int] = None

    @property
    def path(self) -> str:
        return osp.join(self.run_dir, LOCK_FILE)

    def acquire(self) -> bool:
        """Take the lock; return False when another process holds it."""
        if self.fd is not None:
            return True
        os.makedirs(self.run_dir, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        # Who holds it, for a person looking at a busy run; not used to decide.
        os.ftruncate(fd, 0)
        os.write(fd, f'{os.getpid()} {os.uname().nodename}\n'.encode())
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def holder(self) -> str:
        """``pid host`` of the last process that took the lock, or ''."""
        try:
            with open(self.path) as f:
                return f.read().strip()
        except OSError:
            return ''

    def __enter__(self) -> 'RunLock':
        if not self.acquire():
            raise RunLockedError(
                f'{self.run_dir} is being trained by another process '
                f'({self.holder() or "unknown"})')
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def is_locked(run_dir: str) -> bool:
    """Whether some process holds the run's lock right now."""
    lock = RunLock(run_dir)
    if not osp.isdir(run_dir):
        return False
    if lock.acquire():
        lock.release()
        return False
    return True
