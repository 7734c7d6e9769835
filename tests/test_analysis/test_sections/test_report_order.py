"""Every report section, in order, from partial results."""
import os

from analysis.report import section_anchor, write_report
from analysis.results import load_results
from analysis.sections.report_order import report_sections


def test_sections_build_from_partial_results(tmp_path, results_csv):
    df = load_results(results_csv)
    out = str(tmp_path / 'report')
    os.makedirs(out)
    sections = report_sections(df, df, out, 10, [results_csv])
    titles = [s.title for s in sections]
    assert any(t.startswith('Verdicts') for t in titles)
    verdicts = next(s for s in sections
                    if s.title.startswith('Verdicts')).tables[0]
    assert len(verdicts) == 11 and (verdicts.verdict == 'not run').all()
    # Nothing of the paper tables ran: one line per table naming its grid,
    # not dozens of "not run" rows.
    paper = next(s for s in sections if s.title.startswith('Paper'))
    assert not paper.tables
    assert 'CenterMask Table 1 (14 published numbers): not run; ' \
        '.venv/bin/python experiments/run_grid.py ' \
        'experiments/grids/centermask_table1.yaml' in ' '.join(paper.text)
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
        anchor = section_anchor(title)
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
