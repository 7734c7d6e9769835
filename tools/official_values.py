"""Print each COCO config's official values side by side with ours.

    python tools/official_values.py \
        configs/centermask/centermask_r50_fpn_1x_coco.py
    python tools/official_values.py configs/*/*_coco*.py --summary

One markdown table per config: the official key, value and file:line (from
``configs/official/<config>.yaml``), our key in the merged mmengine config
and its value, and whether it is held, a deliberate difference or a value no
official config sets (with the reason). Exit status 1 when a row does not
hold (``tests/test_experiments/test_grid/test_official_values.py`` fails
then too).
"""
import argparse
import json
import os.path as osp
import sys

PROJECT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if PROJECT not in sys.path:
    sys.path.insert(0, PROJECT)


def _cell(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text.replace('|', '\\|').replace('\n', ' ')


def markdown(table) -> str:
    """The table as markdown, one row per official value."""
    lines = ['| official key | official value | source | our key | '
             'our value | status |', '|---|---|---|---|---|---|']
    for row in table.itertuples():
        status = row.status + ('' if row.ok else ' **FAILS**')
        if row.reason:
            status += f': {row.reason}'
        lines.append('| ' + ' | '.join(_cell(v) for v in (
            row.official_key, row.official_value, row.source, row.our_key,
            row.our_value, status)) + ' |')
    return '\n'.join(lines)


def main() -> int:
    from experiments.grid.official_values import official_table
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='+')
    parser.add_argument('--summary', action='store_true',
                        help='counts per config only')
    args = parser.parse_args()
    failed = 0
    for config in args.configs:
        table = official_table(config)
        counts = table.status.value_counts().to_dict()
        bad = int((~table.ok).sum())
        failed += bad
        print(f'## {config}\n\n{len(table)} rows: '
              + ', '.join(f'{counts.get(k, 0)} {k}' for k in (
                  'held', 'deliberate', 'unofficial'))
              + (f'; {bad} FAIL' if bad else '') + '\n')
        if not args.summary:
            print(markdown(table) + '\n')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
