import json
import math
import os
import re

import numpy as np
import pandas as pd
import pytest

from analysis.report import _anchor, write_report
from analysis.results import (ci95_halfwidth, load_results, summarize,
                              with_expected)
from experiments.store import COLUMNS


def _row(model, arm, seed, box, mask, status='finished'):
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
def results_csv(tmp_path):
    rows = [_row('mask_rcnn', 'default', 0, 0.30, 0.25),
            _row('mask_rcnn', 'default', 1, 0.32, 0.27),
            _row('mask_rcnn', 'default', 2, 0.34, 0.29),
            _row('centermask', 'eq2', 0, np.nan, np.nan, status='failed')]
    path = tmp_path / 'results.csv'
    pd.DataFrame(rows, columns=COLUMNS).to_csv(path, index=False)
    return str(path)


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


def test_report_with_nothing_finished(tmp_path):
    path = tmp_path / 'results.csv'
    pd.DataFrame([_row('a', 'default', 0, np.nan, np.nan, 'failed')],
                 columns=COLUMNS).to_csv(path, index=False)
    paths = write_report(load_results(str(path)), str(tmp_path / 'r'),
                         str(path))
    assert 'ap_by_size' not in paths
    assert 'Failed runs' in open(paths['markdown']).read()


def test_missing_results_table_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='results.csv'):
        load_results(str(tmp_path / 'results.csv'))


def test_claims_sections_build_from_partial_results(tmp_path, results_csv):
    from analysis.claims_report import claims_sections
    df = load_results(results_csv)
    out = str(tmp_path / 'report')
    os.makedirs(out)
    sections = claims_sections(df, df, out, 10, [results_csv])
    titles = [s.title for s in sections]
    assert any(t.startswith('Verdicts') for t in titles)
    verdicts = next(s for s in sections if s.title.startswith('Verdicts')).tables[0]
    assert len(verdicts) == 11 and (verdicts.verdict == 'not run').all()
    # Nothing of the paper tables ran: one line per table naming its grid,
    # not dozens of "not run" rows.
    paper = next(s for s in sections if s.title.startswith('Paper'))
    assert not paper.tables
    assert 'CenterMask Table 1 (14 published numbers): not run; python ' \
        'experiments/run_grid.py experiments/grids/centermask_table1.yaml' \
        in ' '.join(paper.text)
    sweep = next(s for s in sections if s.title.startswith('Best-matching'))
    assert not sweep.figures and 'retinamask_best_matching.yaml' in \
        ' '.join(sweep.text)
    se = next(s for s in sections if s.title.startswith('SE vs eSE'))
    assert not se.tables and 'centermask_table4.yaml' in se.text[0]
    paths = write_report(df, out, results_csv, sections=sections)
    html = open(paths['html']).read()
    assert 'W11' in html and 'best_matching_sweep' not in paths
    # A table of contents links every section; `code` is not left literal.
    for title in ['Provenance', 'Comparison'] + titles:
        anchor = _anchor(title)
        assert f'<a href="#{anchor}">' in html and f'id="{anchor}"' in html
    assert '`' not in html and '<code>' in html
    assert ' nan ' not in open(paths['markdown']).read()
    # The paper's milliseconds are drawn even before we time anything.
    speed = next(s for s in sections if s.title == 'Speed vs accuracy')
    assert 'No run of ours has a latency yet' in ' '.join(speed.text)
    assert 'speed_vs_accuracy' in paths
    # No detections were saved: the per-image sections say so.
    assert 'No finished run has saved detections' in open(
        paths['markdown']).read()


def test_paper_table_flags_a_row_trained_off_the_papers_recipe():
    from analysis.claims_report import paper_tables_section

    def table1(seed, total, lr, recipe):
        row = _row('centermask_r50_1x', 'maskiou', seed, 0.39, 0.35)
        row.update(grid='centermask_table1', total_batch=total,
                   world_size=total // 2, images_per_process=2,
                   accumulation=1, base_lr=lr, recipe=recipe,
                   paper_total_batch=16, paper_lr=0.01)
        return row

    def mask_ap(df):
        table = paper_tables_section(df).tables[0]
        return table[(table.row == '+ mask scoring')
                     & (table.metric == 'mask_AP')].iloc[0]

    paper = mask_ap(pd.DataFrame([table1(0, 16, 0.01, 'paper')]))
    assert paper.recipe == 'paper' and paper.batch == '16 = 8x2x1, LR 0.01'
    assert 'not the paper' not in paper.delta
    # Batch 2 at LR 0.01: 8x the per-image LR of the paper's recipe.
    off = mask_ap(pd.DataFrame([table1(0, 16, 0.01, 'paper'),
                                table1(1, 2, 0.01, 'manual')]))
    assert off.delta.endswith("(not the paper's recipe)")
    assert 'manual; batch 2 (paper 16)' in off.recipe
    assert '2 = 1x2x1, LR 0.01' in off.batch
