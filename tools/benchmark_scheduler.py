"""Idle slot time of the grid scheduler on dummy runs of random duration.

    python tools/benchmark_scheduler.py                # 40 runs, 4 slots
    python tools/benchmark_scheduler.py --runs 100 --slots 8

Each dummy run is a real child process (the Python interpreter, like a
training run) that sleeps for its duration and records when its work began
and ended. The idle fraction is one minus the slot-seconds spent inside
that work over slots x the grid's wall time, so process start-up, the wait
for an exit to be noticed and the scheduler's own work all count as idle.

It prints the total idle fraction per ordering and splits it into: the
start-up and exit of the processes (a slot is held from the launch to the
moment the exit is noticed, the run works for less), slot time lost while a
run was queued (the scheduler's own delay), and the rest, the tail where
fewer runs than slots are left. Runs are
scheduled in random order (durations unknown) and longest first (what
``run_grid.py`` does with its estimate of each run's length).
"""
import argparse
import json
import os
import os.path as osp
import random
import subprocess
import sys
import tempfile
import time

from experiments.runner.scheduler import Job, SlotScheduler

DUMMY = ('import json, sys, time\n'
         't0 = time.time(); time.sleep(float(sys.argv[1]))\n'
         'json.dump([t0, time.time()], open(sys.argv[2], "w"))\n')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--runs', type=int, default=40)
    parser.add_argument('--slots', type=int, default=4)
    parser.add_argument('--min-s', type=float, default=2.0,
                        help='shortest dummy run')
    parser.add_argument('--max-s', type=float, default=12.0,
                        help='longest dummy run')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def dummy_job(i: int, duration: float, out_dir: str) -> Job:
    record = osp.join(out_dir, f'{i}.json')

    def start(slot_ids):
        return subprocess.Popen(
            [sys.executable, '-c', DUMMY, str(duration), record],
            start_new_session=True)

    return Job(name=f'dummy{i}', start=start,
               finish=lambda code: 'finished' if code == 0 else 'failed')


def measure(durations, slots: int, longest_first: bool) -> dict:
    with tempfile.TemporaryDirectory() as out_dir:
        order = sorted(range(len(durations)), key=lambda i: -durations[i]) \
            if longest_first else list(range(len(durations)))
        jobs = [dummy_job(i, durations[i], out_dir) for i in order]
        scheduler = SlotScheduler([f'cpu{i}' for i in range(slots)],
                                  tick_s=3600)
        t0 = time.monotonic()
        results = scheduler.run(jobs)
        wall = time.monotonic() - t0
        assert all(s == 'finished' for s in results.values()), results
        work = 0.0
        for i in range(len(durations)):
            with open(osp.join(out_dir, f'{i}.json')) as f:
                begin, end = json.load(f)
            work += end - begin
    total = slots * wall
    return dict(wall_s=wall, work_s=work,
                idle=1 - work / total,
                process_overhead=(scheduler.stats.busy_slot_s - work) / total,
                idle_while_queued=scheduler.stats.idle_while_queued,
                lower_bound_s=max(sum(durations) / slots, max(durations)))


def main(argv=None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    durations = [rng.uniform(args.min_s, args.max_s) for _ in range(args.runs)]
    print(f'{args.runs} dummy runs of {args.min_s:g}-{args.max_s:g} s '
          f'(uniform, seed {args.seed}; {sum(durations):.1f} s of work) on '
          f'{args.slots} slots; {os.cpu_count()} CPU cores')
    for name, longest_first in (('random order', False),
                                ('longest first', True)):
        m = measure(durations, args.slots, longest_first)
        tail = m['idle'] - m['process_overhead'] - m['idle_while_queued']
        print(f'  {name:13s}: wall {m["wall_s"]:6.1f} s (lower bound '
              f'{m["lower_bound_s"]:.1f} s), idle slot-time '
              f'{100 * m["idle"]:.2f}% of slots x wall: process start/exit '
              f'{100 * m["process_overhead"]:.2f}%, slot free while a run '
              f'was queued {100 * m["idle_while_queued"]:.2f}%, tail '
              f'{100 * tail:.2f}%')
    return 0


if __name__ == '__main__':
    sys.exit(main())
