"""What the runner and its training child agree on, without torch.

The grid runner (``experiments/runner/launch.py``) starts
``experiments/runner/train_run.py`` as a child; importing that module would
pull torch and mmengine's runner into ``run_grid.py`` before anything needs
them (``run_grid.py --help`` took 4 s), so the two things the runner needs
from it live here.
"""
import ctypes
import signal

# sysexits.h EX_TEMPFAIL: nothing was done, try again later.
EXIT_LOCKED = 75


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies.

    A runner killed with SIGKILL cannot stop its children, nor a dead
    ``rank_launch`` its ranks: none may train on alone, outside the run's
    lock. Used as ``preexec_fn`` of the runner's child
    (``experiments/runner/launch.py``) and by every rank at start.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
