"""Download every initial weight a grid's runs read, on a node with internet
(issue 37).

    python tools/fetch_weights.py experiments/grids/centermask_table1.yaml
    python tools/fetch_weights.py GRID --list     # what and where; no download
    python tools/fetch_weights.py GRID --cache /shared/weights

Each run's config is resolved with the grid's overrides and every initial
weight it reads (``experiments/plan/weights_check.py``) is downloaded to
the file its loader will read: ``torch.hub.get_dir()/checkpoints`` for
``open-mmlab://``, ``torchvision://``, ``mmcls://`` and URLs (checked
against the sha256 prefix in the file name, as torch hub checks it), the
Hugging Face cache for ``timm://``, and ``checkpoints/`` for the official
VoVNet classifiers. A file already there is left as it is.

``--cache DIR`` (default: the grid's ``weights_cache``) downloads into DIR
instead; the runs read it when the grid says ``weights_cache: DIR`` or when
``TORCH_HOME=DIR HF_HUB_CACHE=DIR/hub`` are exported. Exit status: 0 when
every weight is there, 1 when one could not be fetched (one line each) or,
with ``--list``, is missing, 2 on a bad grid.
"""
import argparse
import os.path as osp
import sys
from typing import TYPE_CHECKING, List

if TYPE_CHECKING:
    from experiments.grid.spec import GridSpec
    from experiments.plan.weights_check import WeightSource

PROJECT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if PROJECT not in sys.path:
    sys.path.insert(0, PROJECT)


def grid_sources(grid: 'GridSpec') -> List['WeightSource']:
    """Every file the grid's runs read, once each.

    The config of each run is built as the planner builds it
    (:func:`~experiments.plan.weights_check.run_weight_sources`); the data
    need not be here.

    Raises:
        GridSpecError: An override names a path the config lacks.
        ConfigBuildError: A config file is missing or does not parse.
    """
    from experiments.plan.weights_check import run_weight_sources
    from experiments.plan.weights_fetch import unique_sources
    sources = []
    for run in grid.expand():
        sources += run_weight_sources(
            run, f'{grid.path}: run {run.label} ({run.config})')
    return unique_sources(sources)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description='Download the initial weights of every run of a grid.')
    parser.add_argument('grid', help='grid specification (YAML)')
    parser.add_argument('--cache', default=None, metavar='DIR',
                        help='download into DIR (as TORCH_HOME and the '
                        'Hugging Face cache DIR/hub); default: the grid\'s '
                        'weights_cache, else the caches the runs read now')
    parser.add_argument('--list', action='store_true',
                        help='list each weight and where it goes; download '
                        'nothing')
    args = parser.parse_args(argv)
    # After sys.path has the checkout (this script runs from tools/).
    from experiments.cli import fail
    from experiments.grid.run_config import ConfigBuildError
    from experiments.grid.spec import GridSpecError, load_grid
    from experiments.plan.weights_check import use_weights_cache
    from experiments.plan.weights_fetch import FetchError, fetch
    try:
        grid = load_grid(args.grid)
        cache = args.cache or grid.weights_cache
        if cache:
            cache = use_weights_cache(cache)
        sources = grid_sources(grid)
    except (GridSpecError, ConfigBuildError) as e:
        return fail(str(e))
    failed = 0
    for source in sources:
        what = f'{source.config}: {source.key} = {source.url}'
        if args.list:
            state = 'present' if source.available else 'missing'
            failed += not source.available
            print(f'{state:10s} {source.cache_path}  ({what})')
            continue
        try:
            state = fetch(source, progress=sys.stderr.isatty())
        except FetchError as e:
            failed += 1
            print(f'error: {e}', file=sys.stderr)
            continue
        print(f'{state:10s} {source.cache_path}  ({what})')
    if not sources:
        print(f'{args.grid}: no run reads initial weights')
    elif cache and not args.list:
        print(f'the runs read {cache} when the grid says weights_cache: '
              f'{cache}, or with TORCH_HOME={cache} '
              f'HF_HUB_CACHE={osp.join(cache, "hub")} exported')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
