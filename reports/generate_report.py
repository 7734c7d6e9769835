"""Write the Markdown + HTML report of a grid's results.

    python reports/generate_report.py --grid experiments/grids/smoke.yaml
    python reports/generate_report.py --results work_dirs/smoke/results.csv

With ``--grid``, the results table defaults to ``<work_dir>/results.csv`` and
every run the grid defines but the table lacks is shown as "not run".
"""
import argparse
import os.path as osp
import sys

import pandas as pd

from analysis.report import write_report
from analysis.results import load_results, with_expected
from experiments.grid_spec import GridSpecError, load_grid, project_path


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Report a grid\'s results.')
    parser.add_argument('--grid', default=None, help='grid specification')
    parser.add_argument('--results', default=None,
                        help='results.csv (default: <grid work_dir>/'
                        'results.csv)')
    parser.add_argument('--out', default=None,
                        help='output directory (default: next to the '
                        'results table, in report/)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.grid and not args.results:
        print('error: give --grid or --results', file=sys.stderr)
        return 2
    expected = None
    results_path = args.results
    title, description = 'Grid report', ''
    try:
        if args.grid:
            grid = load_grid(args.grid)
            title = f'Grid report: {grid.name}'
            description = grid.description
            results_path = results_path or osp.join(
                project_path(grid.work_dir), 'results.csv')
            expected = pd.DataFrame(
                [(r.model, r.arm, r.dataset, r.seed) for r in grid.expand()],
                columns=['model', 'arm', 'dataset', 'seed'])
        df = with_expected(load_results(results_path), expected)
    except (GridSpecError, FileNotFoundError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    out_dir = args.out or osp.join(osp.dirname(osp.abspath(results_path)),
                                   'report')
    paths = write_report(df, out_dir, results_path, args.grid, title=title,
                         description=description)
    print(f'report: {paths["html"]}')
    print(f'        {paths["markdown"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
