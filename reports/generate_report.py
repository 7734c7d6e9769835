"""Write the Markdown + HTML report of a grid's results.

    .venv/bin/python reports/generate_report.py \\
        --grid experiments/grids/smoke.yaml
    .venv/bin/python reports/generate_report.py \\
        --results work_dirs/smoke/results.csv

With ``--grid``, the results table defaults to ``<work_dir>/results.csv`` and
every run the grid defines but the table lacks is shown as "not run", or
"started, not finished" when its run dir exists.

Beyond the comparison, the report re-evaluates every finished run's saved
detections per image (fine size bins, AP per IoU threshold, bootstrap
intervals) and gives a verdict on each reviewed weakness W1-W11. With
``--grid`` the verdicts, paper tables and cost sections also read the results
table of every grid declared in ``analysis/data/grids.yaml`` that has one
(``--no-other-grids`` to use only this one); ``--results FILE`` alone reads
FILE and nothing else. Either way the tables read are printed. Partial
results are fine: what is missing is named, with the grid that would
produce it.
"""
import argparse
import os
import os.path as osp
import sys

import pandas as pd

from analysis.report import write_report
from analysis.results import load_results, with_expected
from analysis.sections.report_order import report_sections
from analysis.verdicts import REPORT_GRIDS, load_report_grids
from experiments.cli import fail
from experiments.cost.model_cost import device_name
from experiments.cost.plan_cost import find_rate, load_rates
from experiments.grid.spec import GridSpecError, load_grid
from experiments.store import (RESULTS, project_path, read_run_meta,
                               run_status, warn)


def gather_results(df: pd.DataFrame, results_path: str):
    """This table plus every declared grid's results table that exists."""
    frames, sources = [df], [results_path]
    for grid_file in sorted(project_path(path) for path in
                            load_report_grids().values()):
        if not osp.isfile(grid_file):
            warn(f'{grid_file}: declared in {REPORT_GRIDS} but missing; '
                 f'left out of the verdicts')
            continue
        try:
            path = osp.join(project_path(load_grid(grid_file).work_dir),
                            RESULTS)
        except GridSpecError:
            continue
        if osp.isfile(path) and osp.abspath(path) != osp.abspath(
                results_path):
            try:
                frames.append(load_results(path))
            except ValueError as e:
                warn(f'{e}; left out of the verdicts')
                continue
            sources.append(path)
    return pd.concat(frames, ignore_index=True), sources


def run_rates(all_results: pd.DataFrame) -> dict:
    """(grid, run_id) -> the rate table's row (or None) for every finished
    run with a config, on the device it ran on: NVIDIA when it had GPUs,
    else this machine's CPU model."""
    rates, out, cpu = load_rates(), {}, None
    done = all_results[all_results.status == 'finished']
    for r in done.itertuples():
        if not isinstance(getattr(r, 'config', None), str):
            continue
        gpus = getattr(r, 'gpus', 0) or 0
        if gpus == gpus and gpus > 0:
            device = 'NVIDIA'
        else:
            cpu = cpu or device_name('cpu').split(' (')[0]
            device = cpu
        out[(r.grid, r.run_id)] = find_rate(rates, r.config, device)
    return out


def started_cells(work_dir: str) -> set:
    """(model, arm, dataset, seed) of every run dir in ``work_dir`` that has
    started (``run.json``) and has no final status yet."""
    cells = set()
    if not osp.isdir(work_dir):
        return cells
    for name in os.listdir(work_dir):
        run_dir = osp.join(work_dir, name)
        if run_status(run_dir) in ('interrupted', 'damaged'):
            meta = read_run_meta(run_dir)
            cells.add((meta.get('model'), meta.get('arm'),
                       meta.get('dataset'), meta.get('seed')))
    return cells


def set_aside_previous_report(out_dir: str) -> None:
    """Rename the last build's report to ``report.previous.*``.

    A build that stops half-way must not leave the old report in place
    looking current; the old one is kept under a name that says it is old.
    """
    for ext in ('html', 'md'):
        path = osp.join(out_dir, f'report.{ext}')
        if osp.isfile(path):
            os.replace(path, osp.join(out_dir, f'report.previous.{ext}'))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Report a grid\'s results.')
    parser.add_argument('--grid', default=None,
                        help='grid specification: its runs not in the table '
                        'are listed as not run, and the verdicts also read '
                        'every declared grid\'s results table '
                        '(analysis/data/grids.yaml)')
    parser.add_argument('--results', default=None, metavar='FILE',
                        help='results.csv (default: <grid work_dir>/'
                        'results.csv); without --grid only FILE is read, '
                        'the verdicts included')
    parser.add_argument('--out', default=None,
                        help='output directory (default: next to the '
                        'results table, in report/)')
    parser.add_argument('--resamples', type=int, default=1000,
                        help='image-bootstrap resamples')
    parser.add_argument('--no-other-grids', action='store_true',
                        help='with --grid: verdicts from this grid\'s '
                        'results table only')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.grid and not args.results:
        return fail('give --grid or --results')
    expected = None
    results_path = args.results
    title, description = 'Grid report', ''
    try:
        if args.grid:
            grid = load_grid(args.grid)
            title = f'Grid report: {grid.name}'
            description = grid.description
            results_path = results_path or osp.join(
                project_path(grid.work_dir), RESULTS)
            started = started_cells(project_path(grid.work_dir))
            expected = pd.DataFrame(
                [(r.model, r.arm, r.dataset, r.seed,
                  (r.model, r.arm, r.dataset, r.seed) in started)
                 for r in grid.expand()],
                columns=['model', 'arm', 'dataset', 'seed', 'started'])
        df = with_expected(load_results(results_path), expected)
    except (GridSpecError, FileNotFoundError, ValueError) as e:
        return fail(str(e))
    out_dir = args.out or osp.join(osp.dirname(osp.abspath(results_path)),
                                   'report')
    all_results, sources = df, [results_path]
    if args.grid and not args.no_other_grids:
        all_results, sources = gather_results(df, results_path)
    print('results read: ' + ', '.join(sources) + (
        '' if args.grid else ' (--results alone: no other grid\'s table; '
        'give --grid to read the declared grids\' too)'))
    try:
        os.makedirs(out_dir, exist_ok=True)
        set_aside_previous_report(out_dir)
        sections = report_sections(df, all_results, out_dir, args.resamples,
                                   sources, run_rates(all_results))
        paths = write_report(df, out_dir, results_path, args.grid,
                             title=title, description=description,
                             sections=sections)
    except OSError as e:
        # A read-only or full place: one line naming it.
        return fail(f'cannot write the report in {out_dir}: '
                    f'{e.strerror or e}'
                    f'{f" ({e.filename})" if e.filename else ""}')
    print(f'report: {paths["html"]}')
    print(f'        {paths["markdown"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
