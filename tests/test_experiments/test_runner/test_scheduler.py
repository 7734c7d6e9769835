"""The slot scheduler with dummy child processes (no training)."""
import json
import os.path as osp
import subprocess
import sys

import pytest

from experiments.runner.scheduler import Job, SlotScheduler

SLEEP = ('import json, sys, time\n'
         't0 = time.time(); time.sleep(float(sys.argv[1]))\n'
         'json.dump([t0, time.time(), sys.argv[3]], open(sys.argv[2], "w"))\n')


def _job(tmp_path, name, seconds, slots=1, log=None):
    record = str(tmp_path / f'{name}.json')

    def start(slot_ids):
        if log is not None:
            log.append((name, list(slot_ids)))
        return subprocess.Popen([sys.executable, '-c', SLEEP, str(seconds),
                                 record, ','.join(slot_ids)])

    return Job(name=name, start=start, slots=slots,
               finish=lambda code: 'finished' if code == 0 else 'failed')


def _intervals(tmp_path, names):
    return {n: json.load(open(tmp_path / f'{n}.json')) for n in names}


def test_jobs_share_slots_without_overlap(tmp_path):
    names = [f'j{i}' for i in range(6)]
    scheduler = SlotScheduler(['cpu0', 'cpu1', 'cpu2'])
    results = scheduler.run([_job(tmp_path, n, 0.4) for n in names])
    assert results == {n: 'finished' for n in names}
    runs = _intervals(tmp_path, names)
    # Never two jobs on one slot at once, and three ran at the same time.
    for a in names:
        for b in names:
            ta, tb = runs[a], runs[b]
            if a < b and ta[2] == tb[2]:
                assert ta[1] <= tb[0] or tb[1] <= ta[0]
    starts = sorted(t[0] for t in runs.values())
    assert starts[2] - starts[0] < 0.4
    # Six 0.4 s jobs on three slots: two rounds, not six.
    assert scheduler.stats.wall_s < 6 * 0.4


def test_multi_slot_job_waits_for_enough_free_slots(tmp_path):
    log = []
    jobs = [_job(tmp_path, 'one', 0.6, log=log),
            _job(tmp_path, 'pair', 0.2, slots=2, log=log),
            _job(tmp_path, 'other', 0.2, log=log)]
    SlotScheduler(['0', '1']).run(jobs)
    slots = dict(log)
    assert len(set(slots['pair'])) == 2
    runs = _intervals(tmp_path, ['one', 'pair', 'other'])
    # "pair" needs both GPUs: it starts after "one" has ended; "other" fits
    # beside "one" and goes first (first fit).
    assert runs['pair'][0] >= runs['one'][1]
    assert runs['other'][0] < runs['one'][1]
    assert runs['pair'][2] == '0,1'


def test_deferred_job_is_retried_and_skips_are_final(tmp_path):
    tries = []
    real = _job(tmp_path, 'busy', 0.1)

    def start(slot_ids):
        tries.append(len(tries))
        return None if len(tries) < 3 else real.start(slot_ids)

    events = []
    jobs = [Job('busy', start, real.finish),
            Job('done', lambda s: 'finished', lambda c: 'failed')]
    results = SlotScheduler(['cpu0'], on_event=lambda k, j, d: events.append(
        (k, j.name if j else None)), tick_s=0.1).run(jobs)
    assert results == {'busy': 'finished', 'done': 'finished'}
    assert len(tries) == 3
    assert events.count(('deferred', 'busy')) == 2
    assert ('skip', 'done') in events


def test_failure_of_one_job_does_not_stop_the_others(tmp_path):
    def start(slot_ids):
        return subprocess.Popen([sys.executable, '-c', 'raise SystemExit(3)'])

    codes = []
    crash = Job('crash', start, lambda c: codes.append(c) or 'failed')
    results = SlotScheduler(['cpu0']).run([crash, _job(tmp_path, 'ok', 0.1)])
    assert results == {'crash': 'failed', 'ok': 'finished'} and codes == [3]


def test_interrupt_stops_running_children(tmp_path):
    procs = []

    def start(slot_ids):
        procs.append(subprocess.Popen(
            [sys.executable, '-c', 'import time; time.sleep(60)'],
            start_new_session=True))
        return procs[-1]

    def on_event(kind, job, detail):
        if kind == 'tick':
            raise KeyboardInterrupt

    job = Job('long', start, lambda c: 'finished')
    with pytest.raises(KeyboardInterrupt):
        SlotScheduler(['cpu0'], on_event=on_event, tick_s=0.2,
                      kill_grace_s=5).run([job])
    assert procs[0].poll() is not None


def test_job_larger_than_all_slots_is_refused(tmp_path):
    with pytest.raises(ValueError, match='needs more slots'):
        SlotScheduler(['0', '1']).run([_job(tmp_path, 'big', 0, slots=4)])
    assert not osp.exists(tmp_path / 'big.json')
