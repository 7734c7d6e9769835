import os.path as osp

import pytest

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
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    import mmdet_plugins  # noqa: F401


@pytest.fixture
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
    MMLogger.get_instance(f'test-{request.node.nodeid}')
    yield
