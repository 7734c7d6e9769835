"""Per-run locks across processes, and their release when a holder dies."""
import signal
import subprocess
import sys
import time

import pytest

from experiments.runner.lock import RunLock, RunLockedError, is_locked

HOLD = ('import sys, time\n'
        'from experiments.runner.lock import RunLock\n'
        'lock = RunLock(sys.argv[1]); assert lock.acquire()\n'
        'print("held", flush=True); time.sleep(60)\n')


def _holder(run_dir):
    proc = subprocess.Popen([sys.executable, '-c', HOLD, run_dir],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == 'held'
    return proc


def test_second_process_cannot_take_a_held_lock(tmp_path):
    run_dir = str(tmp_path / 'run')
    proc = _holder(run_dir)
    try:
        assert is_locked(run_dir)
        lock = RunLock(run_dir)
        assert not lock.acquire()
        assert str(proc.pid) in lock.holder()
        with pytest.raises(RunLockedError, match=str(proc.pid)):
            with RunLock(run_dir):
                pass
    finally:
        proc.kill()
        proc.wait()


def test_sigkilled_holder_releases_the_lock(tmp_path):
    run_dir = str(tmp_path / 'run')
    proc = _holder(run_dir)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 5
    while is_locked(run_dir) and time.time() < deadline:
        time.sleep(0.05)
    with RunLock(run_dir) as lock:
        assert lock.fd is not None and is_locked(run_dir)
    assert not is_locked(run_dir)


def test_lock_is_reentrant_for_its_holder_only(tmp_path):
    lock = RunLock(str(tmp_path / 'run'))
    assert lock.acquire() and lock.acquire()
    assert not RunLock(str(tmp_path / 'run')).acquire()
    lock.release()
    assert not is_locked(str(tmp_path / 'run'))
