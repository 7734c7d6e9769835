import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from analysis.report import write_report
from analysis.results import (ci95_halfwidth, load_results, summarize,
                              with_expected)
from experiments.store import COLUMNS


def test_summary_means_and_intervals_over_seeds(results_csv):
    summary = summarize(load_results(results_csv))
    mrcnn = summary[summary.model == 'mask_rcnn'].iloc[0]
    assert mrcnn.n_seeds == 3 and mrcnn.status == '3/3 finished'
    assert mrcnn.box_AP == pytest.approx(0.32)
    # t(0.975, 2) * sd / sqrt(3) with sd = 0.02
    assert mrcnn.box_AP_ci == pytest.approx(4.302653 * 0.02 / math.sqrt(3),
                                            rel=1e-5)
    assert math.isnan(ci95_halfwidth(np.array([0.3])))
    failed = summary[summary.model == 'centermask'].iloc[0]
    assert failed.n_seeds == 0 and failed.status == '1/1 failed'


def test_report_from_partial_results_marks_missing_arms(tmp_path,
                                                        results_csv):
    expected = pd.DataFrame(
        [('mask_rcnn', 'default', 'builtin', s) for s in range(3)]
        + [('centermask', 'eq2', 'builtin', 0),
           ('retinamask', 'default', 'builtin', 0)],
        columns=['model', 'arm', 'dataset', 'seed'])
    df = with_expected(load_results(results_csv), expected)
    assert (df.status == 'not run').sum() == 1
    paths = write_report(df, str(tmp_path / 'report'), results_csv,
                         'grid.yaml')
    md = open(paths['markdown']).read()
    html = open(paths['html']).read()
    rows = {line.split('|')[1].strip(): line for line in md.splitlines()
            if line.startswith('| ') and 'model' not in line}
    assert '1/1 not run' in rows['retinamask']
    assert '1/1 failed' in rows['centermask']
    assert '32.0 ± 5.0' in rows['mask_rcnn']  # box AP x100 with 95% CI
    assert 'boom' in md  # the failed run's error is reported
    assert results_csv in md and 'grid.yaml' in md
    assert re.search(r'<img [^>]*src="data:image/png;base64,', html)
    assert paths['ap_by_size'].endswith('.png')
    # Number columns right-aligned, text columns (model, status) left.
    header = md.splitlines()[[i for i, line in enumerate(md.splitlines())
                              if line.startswith('| model')][0]]
    columns = [c.strip() for c in header.strip('|').split('|')]
    right = {int(n) for n in re.findall(
        r'#table-comparison td:nth-child\((\d+)\)', html)}
    assert columns.index('seeds') + 1 in right
    assert columns.index('Box AP') + 1 in right
    assert columns.index('model') + 1 not in right
    assert columns.index('status') + 1 not in right
    assert 'weights' in columns
    # Provenance names the code, the packages and the machine.
    assert re.search(r'by code ([0-9a-f]{12}|\?)', md)
    assert 'torch ' in md and 'mmdet ' in md and 'CPU cores' in md


def test_a_started_run_is_not_called_not_run(tmp_path, results_csv):
    from reports.generate_report import started_cells
    # A run dir that started (run.json) and has no final status.
    run_dir = tmp_path / 'work' / 'retinamask__default__builtin__seed0__x'
    run_dir.mkdir(parents=True)
    (run_dir / 'run.json').write_text(json.dumps(dict(
        model='retinamask', arm='default', dataset='builtin', seed=0)))
    started = started_cells(str(tmp_path / 'work'))
    assert started == {('retinamask', 'default', 'builtin', 0)}
    cells = [('retinamask', 'default', 'builtin', 0),
             ('retinamask', 'default', 'builtin', 1)]
    expected = pd.DataFrame([(*c, c in started) for c in cells],
                            columns=['model', 'arm', 'dataset', 'seed',
                                     'started'])
    df = with_expected(load_results(results_csv), expected)
    rows = df[df.model == 'retinamask'].set_index('seed').status
    assert rows[0] == 'started, not finished' and rows[1] == 'not run'
    paths = write_report(df, str(tmp_path / 'report'), results_csv)
    md = open(paths['markdown']).read()
    assert '1 started but not finished, 1 not run' in md
    assert '1/2 started, not finished' in md


def test_report_with_nothing_finished(tmp_path, result_row):
    path = tmp_path / 'results.csv'
    pd.DataFrame([result_row('a', 'default', 0, np.nan, np.nan, 'failed')],
                 columns=COLUMNS).to_csv(path, index=False)
    paths = write_report(load_results(str(path)), str(tmp_path / 'r'),
                         str(path))
    assert 'ap_by_size' not in paths
    assert 'Failed runs' in open(paths['markdown']).read()


def test_missing_results_table_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='results.csv'):
        load_results(str(tmp_path / 'results.csv'))
