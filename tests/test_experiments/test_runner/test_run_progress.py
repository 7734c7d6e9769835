"""Every attempt is recorded, with what is known for sure (issue 16)."""
import json
import os
import os.path as osp
import signal
import sys
import time

import pytest

from experiments.runner.launch import RunAttempt
from experiments.runner.progress import ATTEMPT_ID_ENV, AttemptRecorder
from experiments.runner.scheduler import AGAIN
from experiments.store import read_attempts


def _write(path, obj):
    with open(path, 'w') as f:
        json.dump(obj, f)


def test_attempt_killed_before_training_is_recorded_with_its_signal(
        tmp_path, monkeypatch):
    run_dir = str(tmp_path)
    _write(osp.join(run_dir, 'run.json'), dict(model='m'))
    # A child that is killed while it still imports: it never writes a
    # start record.
    monkeypatch.setattr('experiments.runner.launch.child_command',
                        lambda run_dir, gpus: [sys.executable, '-c',
                                               'import time; time.sleep(60)'])
    attempt = RunAttempt(run_dir, retry_failed=False, signal_retries=1)
    for expected in (AGAIN, 'failed'):
        proc = attempt.begin(dict(os.environ))
        time.sleep(1.0)
        os.kill(proc.pid, signal.SIGKILL)
        assert attempt.end(proc.wait()) == expected
        # The first kill is retried: the run has not failed.
        assert osp.isfile(osp.join(run_dir, 'FAILED.json')) == (
            expected == 'failed')
    records = read_attempts(run_dir)
    assert [r['event'] for r in records] == ['launch', 'end'] * 2
    assert [r['retry'] for r in records[::2]] == [0, 1]
    launch, end = records[2:]
    assert end['attempt'] == launch['attempt']
    assert end['status'] == 'killed by SIGKILL'
    assert end['signal'] == 'SIGKILL' and end['counts'] is True
    # Timed by the runner, which saw the whole attempt.
    assert 0.9 <= end['elapsed_s'] < 30
    failed = json.load(open(osp.join(run_dir, 'FAILED.json')))
    assert failed['error'] == ('child process killed by SIGKILL (out of '
                               'memory, or killed by hand?), on 2 '
                               'attempt(s) in a row (--signal-retries 1)')
    assert failed['signals'] == 'SIGKILL; SIGKILL'


def test_a_runner_restart_ends_the_row_of_kills(tmp_path, monkeypatch):
    """A kill, then the runner killed with the next attempt: after the
    restart the run has all its retries again, even when the new child is
    killed before it could close the attempt that died with the runner."""
    run_dir = str(tmp_path)
    _write(osp.join(run_dir, 'run.json'), dict(model='m'))
    now = time.time()
    with open(osp.join(run_dir, 'attempts.jsonl'), 'w') as f:
        for record in (
                dict(event='launch', attempt='k1', time_s=now - 60),
                dict(event='end', attempt='k1', status='killed by SIGKILL',
                     signal='SIGKILL', counts=True),
                dict(event='launch', attempt='a2', time_s=now - 30)):
            f.write(json.dumps(record) + '\n')
    monkeypatch.setattr('experiments.runner.launch.child_command',
                        lambda run_dir, gpus: [sys.executable, '-c',
                                               'import time; time.sleep(60)'])
    attempt = RunAttempt(run_dir, retry_failed=False, signal_retries=1)
    proc = attempt.begin(dict(os.environ))
    os.kill(proc.pid, signal.SIGKILL)
    # One retry is left: the kill before the restart does not count.
    assert attempt.end(proc.wait()) == AGAIN
    events = [(r['event'], r['attempt']) for r in read_attempts(run_dir)]
    assert events[2:4] == [('launch', 'a2'), ('end', 'a2')]
    assert events[4][0] == 'launch'


def test_child_uses_the_runners_attempt_id(tmp_path, monkeypatch):
    monkeypatch.setenv(ATTEMPT_ID_ENV, 'abc123')
    assert AttemptRecorder(str(tmp_path)).attempt_id == 'abc123'


def test_attempt_killed_with_its_runner_counts_to_its_last_sign_of_life(
        tmp_path):
    """The next attempt closes it from what is on disk: elapsed to the last
    write in the run dir (not the last progress record, up to 10 s old),
    iteration at least that of the newest checkpoint."""
    run_dir = str(tmp_path)
    now = time.time()
    with open(osp.join(run_dir, 'attempts.jsonl'), 'w') as f:
        f.write(json.dumps(dict(event='launch', attempt='a1',
                                time_s=now - 40)) + '\n')
        f.write(json.dumps(dict(event='start', attempt='a1', iter=0,
                                time='x')) + '\n')
    _write(osp.join(run_dir, 'progress.json'),
           dict(attempt='a1', iter=51, elapsed_s=20.0, peak_rss_mb=100.0))
    open(osp.join(run_dir, 'iter_75.pth'), 'w').close()
    os.utime(osp.join(run_dir, 'progress.json'), (now - 25, now - 25))
    # The checkpoint at 75 was the last thing it wrote, 10 s before now;
    # the runner starting the next attempt has just written run.log.
    os.utime(osp.join(run_dir, 'iter_75.pth'), (now - 10, now - 10))
    with open(osp.join(run_dir, 'run.log'), 'w') as f:
        f.write('===== attempt started =====\n')
    AttemptRecorder(run_dir).close_killed_attempts()
    end = [r for r in read_attempts(run_dir) if r['event'] == 'end']
    assert len(end) == 1
    assert end[0]['attempt'] == 'a1' and end[0]['status'] == 'killed'
    assert end[0]['iter'] == 75
    assert end[0]['elapsed_s'] == pytest.approx(30, abs=1.5)
    assert end[0]['exact'] is False
    assert end[0]['peak_rss_mb'] == 100.0
    # Closing twice adds nothing.
    AttemptRecorder(run_dir).close_killed_attempts()
    assert len([r for r in read_attempts(run_dir)
                if r['event'] == 'end']) == 1


def test_damaged_attempts_line_is_skipped_with_a_warning(tmp_path, capsys):
    path = tmp_path / 'attempts.jsonl'
    path.write_text('{"event": "start", "attempt": "a"}\n{"event": "en\n')
    assert read_attempts(str(tmp_path)) == [dict(event='start',
                                                 attempt='a')]
    assert 'attempts.jsonl: line 2 is damaged' in capsys.readouterr().err


def test_eta_of_a_run_past_the_mean_is_its_own_rate_never_zero(tmp_path):
    import io

    from experiments.runner.grid_progress import GridProgress
    from experiments.runner.progress import PROGRESS
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    progress = GridProgress(2, 1, {'slow': str(run_dir)}, io.StringIO())
    progress.started('fast', 'training')
    progress.ended('fast', 'finished')
    progress.durations = [10.0]  # the mean finished run took 10 s
    progress.started('slow', 'training')
    progress.running['slow'] -= 60  # already 60 s, past the mean
    # No iteration yet: unknown, not "ETA 0m00s".
    assert progress.eta_s() is None
    assert 'ETA ?' in progress.status_line()
    # 5 of 20 iterations in 30 s: 90 s to go, at its own rate.
    _write(run_dir / PROGRESS, dict(iter=5, max_iters=20, elapsed_s=30.0))
    assert progress.eta_s() == pytest.approx(90.0)
    assert 'ETA 1m30s' in progress.status_line()


def test_eta_before_any_run_finishes_comes_from_the_running_one(tmp_path):
    import io

    from experiments.runner.grid_progress import GridProgress
    from experiments.runner.progress import PROGRESS
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    progress = GridProgress(3, 1, {'first': str(run_dir)}, io.StringIO())
    progress.started('first', 'training')
    progress.running['first'] -= 30
    assert progress.eta_s() is None  # no rate yet: unknown
    # 10 of 40 iterations in 30 s: 90 s left, and each of the 2 queued
    # runs is expected to take as long as this one (~120 s).
    _write(run_dir / PROGRESS, dict(iter=10, max_iters=40, elapsed_s=30.0))
    assert progress.eta_s() == pytest.approx(90 + 2 * 120, abs=2)


def test_eta_after_a_resume_uses_this_attempts_rate(tmp_path):
    """Resumed at 50 of 200, 10 iterations in this attempt's 10 s: 140 s
    left (issue 39), not the 50 resumed-from iterations counted as done
    in those 10 s."""
    import io

    from experiments.runner.grid_progress import GridProgress
    from experiments.runner.progress import PROGRESS
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    progress = GridProgress(1, 1, {'resumed': str(run_dir)}, io.StringIO())
    progress.started('resumed', 'resuming')
    _write(run_dir / PROGRESS, dict(attempt='a2', iter=60, start_iter=50,
                                    max_iters=200, elapsed_s=10.0))
    assert progress.eta_s() == pytest.approx(140.0)
    assert 'ETA 2m20s' in progress.status_line()
    # A record written before progress.json had start_iter: the attempt's
    # start record in attempts.jsonl says where it resumed.
    _write(run_dir / PROGRESS, dict(attempt='a2', iter=60, max_iters=200,
                                    elapsed_s=10.0))
    with open(run_dir / 'attempts.jsonl', 'w') as f:
        for record in (dict(event='start', attempt='a1', iter=0),
                       dict(event='start', attempt='a2', iter=50)):
            f.write(json.dumps(record) + '\n')
    assert progress.eta_s() == pytest.approx(140.0)


def test_progress_record_says_where_the_attempt_resumed(tmp_path):
    from experiments.runner.progress import PROGRESS
    recorder = AttemptRecorder(str(tmp_path))
    recorder.start(50)
    recorder.progress(60, 200)
    record = json.load(open(tmp_path / PROGRESS))
    assert (record['start_iter'], record['iter']) == (50, 60)
