"""The report's text and tables as a reader sees them (issue 39, item 7):
a caption above every table, the machine load beside every latency, the
README's commands, no absolute path, and ``--results`` reading one table."""
import os
import os.path as osp
import re

import pandas as pd
import pytest
import yaml

from analysis.report import write_report
from analysis.results import load_results, summarize
from analysis.sections.comparison import comparison_table
from analysis.sections.report_order import report_sections
from analysis.sections.verdict import verdict_section
from analysis.verdicts import how_to_run
from experiments.store import COLUMNS, PROJECT_ROOT


def _table_blocks(md: str):
    """(the paragraph just above, the table's first line) of every
    Markdown table."""
    lines = md.splitlines()
    for i, line in enumerate(lines):
        if line.startswith('|') and not lines[i - 1].startswith('|'):
            above = next(x for x in reversed(lines[:i]) if x.strip())
            yield above, line


def test_every_table_has_a_caption_above_it(tmp_path, results_csv):
    df = load_results(results_csv).assign(config='configs/tiny.py')
    # Every finished run without a rate: the planned-vs-actual table comes
    # right after the power table.
    rates = {(r.grid, r.run_id): None
             for r in df[df.status == 'finished'].itertuples()}
    out = str(tmp_path / 'report')
    os.makedirs(out)
    sections = report_sections(df, df, out, 10, [results_csv], rates)
    paths = write_report(df, out, results_csv, sections=sections)
    md = open(paths['markdown']).read()
    blocks = list(_table_blocks(md))
    assert len(blocks) >= 4  # comparison, verdicts, power, planned
    for above, header in blocks:
        assert above.startswith('Table: '), f'no caption above {header}'
    # Two tables one after the other: the second's caption sits between.
    planned = md.index('| run ')
    assert md.rindex('Table: Planned against actual', 0, planned) > \
        md.index('| id ', md.index('## What the grids'))
    html = open(paths['html']).read()
    assert html.count('<table') == html.count('<caption>') == len(blocks)
    power = next(s for s in sections if s.title.startswith('What the'))
    assert len(power.tables) == 2 and len(power.captions) == 2
    assert 'planned/actual = planned_s / actual_s' in power.captions[1]
    assert 'planned/actual' in power.tables[1].columns


def test_latency_is_shown_with_the_load_it_was_timed_under(tmp_path,
                                                          result_row):
    loaded = result_row('centermask', 'default', 0, 0.3, 0.25)
    loaded.update(latency_ms=14423.7, latency_other_load=13.0)
    clean = result_row('mask_rcnn', 'default', 0, 0.3, 0.25)
    clean.update(latency_ms=41.2, latency_other_load=0.02)
    untimed = result_row('retinamask', 'default', 0, 0.3, 0.25)
    path = tmp_path / 'results.csv'
    pd.DataFrame([loaded, clean, untimed], columns=COLUMNS).to_csv(
        path, index=False)
    table = comparison_table(summarize(load_results(str(path))))
    cells = table.set_index('model')[['ms', 'load (cores)']]
    assert cells.loc['centermask'].tolist() == ['14423.7 (under load)',
                                                '13.00']
    assert cells.loc['mask_rcnn'].tolist() == ['41.2', '0.02']
    assert cells.loc['retinamask'].tolist() == ['–', '–']
    md = open(write_report(load_results(str(path)), str(tmp_path / 'r'),
                           str(path))['markdown']).read()
    caption = md[md.index('Table: One row per model'):md.index('| model')]
    assert 'load (cores)' in caption and 'inflated' in caption


def test_not_run_says_the_venv_python():
    assert how_to_run('centermask_table1') == (
        '.venv/bin/python experiments/run_grid.py '
        'experiments/grids/centermask_table1.yaml')


def test_verdict_text_names_no_absolute_path(tmp_path, results_csv):
    df = load_results(results_csv)
    inside = osp.join(PROJECT_ROOT, 'work_dirs', 'g', 'results.csv')
    elsewhere = str(tmp_path / 'other' / 'results.csv')
    section = verdict_section(df, None, [inside, elsewhere])
    text = ' '.join(section.text)
    assert PROJECT_ROOT not in text and str(tmp_path) not in text
    assert not re.search(r'(^|[\s(`])/\w', text)
    assert 'work_dirs/g/results.csv, …/other/results.csv.' in text
    # Outside the project: named from this report's own table's folder.
    here = verdict_section(df, None, [str(tmp_path / 'g' / 'results.csv'),
                                      elsewhere])
    assert ('results.csv (from this report\'s results folder), '
            '../other/results.csv (from') in here.text[0]
    assert str(tmp_path) not in here.text[0]


def _other_grid(tmp_path, results_csv, monkeypatch):
    """A declared grid ``other`` whose work dir has a results table."""
    import reports.generate_report as gr
    work = tmp_path / 'other_work'
    work.mkdir()
    load_results(results_csv).assign(grid='other').to_csv(
        work / 'results.csv', index=False)
    with open(osp.join(PROJECT_ROOT, 'experiments/grids/smoke.yaml')) as f:
        spec = yaml.safe_load(f)
    grid = tmp_path / 'other.yaml'
    grid.write_text(yaml.safe_dump(dict(spec, name='other',
                                        work_dir=str(work))))
    monkeypatch.setattr(gr, 'load_report_grids',
                        lambda: {'other': str(grid)})
    read = {}

    def sections(df, all_results, out_dir, n, sources, rates=None):
        read.update(sources=sources, grids=set(all_results.grid.dropna()))
        return []

    monkeypatch.setattr(gr, 'report_sections', sections)
    return gr, str(work / 'results.csv'), read


def test_results_alone_reads_only_that_table(tmp_path, results_csv,
                                             monkeypatch, capsys):
    gr, other, read = _other_grid(tmp_path, results_csv, monkeypatch)
    assert gr.main(['--results', results_csv, '--resamples', '5',
                    '--out', str(tmp_path / 'r')]) == 0
    assert read == dict(sources=[results_csv], grids={'g'})
    assert f'results read: {results_csv} (--results alone' in \
        capsys.readouterr().out
    # With --grid the declared grids are read too, and named.
    assert gr.main(['--grid', 'experiments/grids/smoke.yaml', '--results',
                    results_csv, '--resamples', '5',
                    '--out', str(tmp_path / 'r2')]) == 0
    assert read == dict(sources=[results_csv, other], grids={'g', 'other'})
    assert f'results read: {results_csv}, {other}\n' in \
        capsys.readouterr().out
    with pytest.raises(SystemExit):
        gr.parse_args(['--help'])
    assert 'without --grid only FILE is read' in ' '.join(
        capsys.readouterr().out.split())
