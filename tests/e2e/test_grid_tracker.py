"""Live tracking of a real tiny run (``run_grid.py --tracker``)."""
import glob
import json
import os.path as osp

import pytest
from helpers import TINY_OVERRIDES, run_grid_cli, write_grid


@pytest.mark.slow
def test_tensorboard_tracker_logs_a_real_run(tiny_builtin, tmp_path):
    work_dir = tmp_path / 'work'
    grid = write_grid(tmp_path / 'g.yaml', work_dir, tiny_builtin,
                      {'a': {}}, overrides=dict(
                          TINY_OVERRIDES,
                          **{'default_hooks.logger.interval': 1}))
    done = run_grid_cli(grid, '--tracker', 'tensorboard')
    assert done.returncode == 0, done.stdout + done.stderr
    [events] = glob.glob(str(work_dir / '*' / '*' / 'vis_data' /
                             'events.out.tfevents.*'))
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator
    acc = EventAccumulator(events)
    acc.Reload()
    assert 'loss' in acc.Tags()['scalars']
    # The same run as without a tracker: the run id does not change.
    again = run_grid_cli(grid)
    assert 'finished earlier, skipped' in again.stdout
    run_dir = osp.dirname(osp.dirname(osp.dirname(events)))
    assert json.load(open(osp.join(run_dir, 'run.json')))['tracker'] == \
        'tensorboard'
