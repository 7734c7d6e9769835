"""The ``--plan`` options of ``run_grid.py``
(``experiments/plan/grid_plan.py``)."""
import argparse


def add_plan_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(
        'plan (what the grid can decide and what it costs; trains nothing)')
    g.add_argument('--plan', action='store_true',
                   help='print per run the estimated wall time and '
                   'device-hours, and per verdict the minimum detectable '
                   'effect, the seeds the claimed effect needs and their '
                   'cost; nothing trains, nothing is written')
    g.add_argument('--plan-devices', type=int, default=1, metavar='N',
                   help='devices (GPUs or CPU slots) the grid will run on')
    g.add_argument('--plan-device', default='cpu', metavar='NAME',
                   help='device of the rates (a substring of the rate '
                   'table\'s device, e.g. V100; default: cpu)')
    g.add_argument('--plan-device-mem-gb', type=float, default=None,
                   metavar='GB', help='memory per device; runs whose '
                   'estimated peak exceeds it are flagged')
    g.add_argument('--probe', type=int, default=0, metavar='N',
                   help='measure the rates instead: train N iterations of '
                   'each distinct config on this machine (in a temporary '
                   'directory)')
    g.add_argument('--save-rates', action='store_true',
                   help='with --probe: write the measured rates into the '
                   'rate table')
    g.add_argument('--rates', default=None, metavar='CSV',
                   help='rate table (default: '
                   'experiments/cost/iteration_rates.csv)')
    g.add_argument('--pilot', action='append', default=[], metavar='PATH',
                   help='results.csv or grid file of existing runs whose '
                   'seed and bootstrap variance replace the COCO prior; '
                   'repeat to combine')
    g.add_argument('--seeds', type=int, default=None, metavar='N',
                   help='also print the power and cost of N seeds per arm')
