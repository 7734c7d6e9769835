"""Results-table rows for the analysis tests, and a small results table."""
import numpy as np
import pandas as pd
import pytest

from experiments.store import COLUMNS


def _result_row(model, arm, seed, box, mask, status='finished'):
    row = dict.fromkeys(COLUMNS, np.nan)
    row.update(run_id=f'{model}{arm}{seed}', grid='g', model=model, arm=arm,
               dataset='builtin', seed=seed, status=status, params=1.5e6,
               iterations=10, wall_time_s=30.0, val_images=4,
               val_instances=9, error='' if status == 'finished' else 'boom')
    for task, value in (('box', box), ('mask', mask)):
        for m in ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl'):
            row[f'{task}_{m}'] = value
    return row


@pytest.fixture
def result_row():
    """``result_row(model, arm, seed, box_ap, mask_ap, status)``: a results
    row of grid ``g`` on ``builtin``, every AP column of a task equal."""
    return _result_row


@pytest.fixture
def results_csv(tmp_path):
    rows = [_result_row('mask_rcnn', 'default', 0, 0.30, 0.25),
            _result_row('mask_rcnn', 'default', 1, 0.32, 0.27),
            _result_row('mask_rcnn', 'default', 2, 0.34, 0.29),
            _result_row('centermask', 'eq2', 0, np.nan, np.nan,
                        status='failed')]
    path = tmp_path / 'results.csv'
    pd.DataFrame(rows, columns=COLUMNS).to_csv(path, index=False)
    return str(path)
