import os
import os.path as osp

import pytest

# Before any test parses a config: mmengine's mmdet:: lookups once per
# worker (experiments/config_cache.py).
import experiments  # noqa: F401

# Under pytest-xdist every worker (and every run it starts: run_grid.py
# reads this as a ceiling) computes with one thread. Two workers with
# torch's default of one thread per core put four OpenMP threads on two
# cores, and their spin-waits made a training test 5x slower
# (tests/test_models/test_mask_branch_training.py, two copies at once on
# this 2-core machine with other jobs running: 348 s at 2 threads each,
# 68 s at 1).
XDIST = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1')) > 1
if XDIST:
    for _name in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
        os.environ[_name] = '1'

SHARED = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), '..',
                  'shared')
COCO128 = osp.join(SHARED, 'datasets', 'coco128-seg')


@pytest.fixture(scope='session')
def tiny_builtin(tmp_path_factory):
    """A small built-in dataset shared by the tests that train."""
    from experiments.data.synthetic_coco import SyntheticCocoSpec, generate
    out = str(tmp_path_factory.mktemp('builtin'))
    spec = SyntheticCocoSpec(num_train=8, num_val=4, image_size=96,
                             num_classes=2, objects_per_image=(1, 3),
                             size_mix=dict(small=0.5, medium=0.5, large=0.0),
                             seed=3)
    generate(spec, out, verbose=False)
    return out


@pytest.fixture(scope='session', autouse=True)
def mmdet_default_scope():
    """mmdet as the registries' default scope for every test, whichever
    test a worker runs first (under pytest-xdist a file may run before any
    test that builds a runner has set it)."""
    import torch
    if XDIST:
        # torch may have been imported before this file set the variables.
        torch.set_num_threads(1)
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    import mmdet_plugins  # noqa: F401


@pytest.fixture(scope='session')
def coco128():
    if not osp.isfile(osp.join(COCO128, 'annotations',
                               'instances_train2017.json')):
        pytest.skip('../shared/datasets/coco128-seg is not available')
    return COCO128


@pytest.fixture(autouse=True)
def fresh_mmengine_logger(request):
    """Make a console-only MMLogger the current one for each test.

    A runner built in-process by an earlier test leaves its MMLogger as
    mmengine's "current instance"; once the runner is garbage-collected its
    file handler is closed, and ``init_weights`` in a later test fails
    writing to it -- depending on when the collector ran.
    """
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope
    MMLogger.get_instance(f'test-{request.node.nodeid}')
    # mmdet as the default scope again: a test that left another current
    # (a runner of another scope) broke later files' registry lookups in a
    # worker (21 KeyErrors in one file order).
    init_default_scope('mmdet')
    yield


@pytest.fixture(autouse=True)
def one_torch_thread(request):
    """Under pytest-xdist, each test starts on one torch thread: a tool
    called in-process with its threads (or a library) may leave more, and
    the worker's later training tests then spin-wait against the other
    worker's (a 60-iteration training test took 8 s after one test and
    66 s after another), and the device a timing is recorded on changes.
    The test that left them is named in a warning."""
    yield
    if XDIST:
        import torch
        if torch.get_num_threads() != 1:
            import warnings
            warnings.warn(f'{request.node.nodeid} left torch at '
                          f'{torch.get_num_threads()} threads; set to 1')
            torch.set_num_threads(1)


# Seconds each slow file took in the last measured `make test` (parallel
# part, fixtures included; 2026-12-07 19:15, one thread per worker). The
# Makefile's --dist loadfile --no-loadscope-reorder hands files to the
# workers in collection order, so a long file collected last leaves the
# other worker idle while one finishes it (as the check-coco file did under
# xdist's default of the files with the most tests first): the longest
# files go first (longest-processing-time-first scheduling). Files not
# listed keep their order, after these.
SLOW_FILES = {
    'tests/e2e/test_check_coco.py': 400,
    'tests/e2e/test_slurm_cluster.py': 280,
    'tests/test_export/test_export_graphs.py': 140,
    'tests/test_engine/test_exact_resume.py': 140,
    'tests/test_analysis/test_calibration.py': 120,
    'tests/e2e/test_run_grid_kill.py': 110,
    'tests/e2e/test_run_grid.py': 100,
    'tests/e2e/test_run_grid_faults.py': 100,
    'tests/e2e/test_distributed_faults.py': 90,
    'tests/test_engine/test_resumable_loop.py': 80,
    'tests/test_experiments/test_cost/test_measure_cost.py': 80,
    'tests/test_experiments/test_runner/test_signal_retry.py': 70,
    'tests/test_export/test_export_tool.py': 70,
    'tests/e2e/test_distributed_parity.py': 70,
    'tests/test_engine/test_stop_checkpoint_hook.py': 50,
    'tests/test_experiments/test_runner/test_resumed_rank_evaluation.py': 40,
    'tests/test_models/test_mask_branch_training.py': 40,
}


def pytest_collection_modifyitems(config, items):
    root = str(config.rootpath)

    def seconds(item):
        rel = osp.relpath(str(item.path), root)
        return -SLOW_FILES.get(rel, 0)
    items.sort(key=seconds)  # stable: a file's tests keep their order
