"""``make check-coco``'s path kept alive in ``make test`` (issue 37).

One COCO config of each family goes through ``tools/check_coco_configs.py``
as ``make check-coco`` runs it -- ``run_grid.py`` at the config's real input
size and training pipeline on real coco128-seg images, its own evaluator --
with fewer images: two trained in one step (one per micro-batch), one
tested. The ONNX export and its parity run for one config of each export
graph (``mmdet_plugins/export/graphs.py``): CenterMask V2-39 for
``MaskOnDetectionsGraph``, which CenterMask R-50, Lite and RetinaMask share,
and Mask R-CNN for ``MaskRCNNGraph``; every family's graph is also exported
at tiny size in ``tests/test_export``. An export at COCO size costs 35-50 s
on one thread. The full check (every config trained and exported, the
recipe's total batch, 8 test images) is ``make check-coco``.
"""
import importlib.util
import os.path as osp

import pandas as pd
import pytest

from experiments.store import PROJECT_ROOT

FAMILIES = (
    'configs/centermask/centermask_r50_fpn_1x_coco.py',
    'configs/centermask/centermask_v2-39_fpn_1x_coco.py',
    'configs/centermask/centermask-lite_v-19_fpn_ms-4x_coco.py',
    'configs/retinamask/retinamask_r50_fpn_1x_coco.py',
    'configs/mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
)


def _tool():
    path = osp.join(PROJECT_ROOT, 'tools', 'check_coco_configs.py')
    spec = importlib.util.spec_from_file_location('check_coco_configs', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# One config per export graph.
EXPORTED = (FAMILIES[1], FAMILIES[4])


@pytest.fixture(scope='module')
def checked(coco128, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('check_coco')
    common = ['--work-dir', str(work_dir), '--data-root', coco128,
              '--images-per-step', '2', '--max-images-per-process', '1',
              '--val-images', '1', '--check-images', '1']
    tool = _tool()
    status = tool.main(['--configs', *FAMILIES, '--no-export', *common])
    trained = pd.read_csv(work_dir / 'check_coco.csv')
    # The same work dir: the finished runs are skipped, only exported.
    export_status = tool.main(['--configs', *EXPORTED, *common])
    exported = pd.read_csv(work_dir / 'check_coco.csv')
    return status, trained, export_status, exported


@pytest.mark.slow
def test_one_config_of_each_family_trains_and_evaluates(checked):
    status, table, _, _ = checked
    assert status == 0, table.to_string()
    assert list(table['config']) == list(FAMILIES)
    assert table['ok'].all()
    assert (table['status'] == 'finished').all()
    assert table['losses_finite'].all()
    assert (table['detections'] > 0).all()
    assert table['box_AP'].between(0, 1).all()
    # Mask AP from each config's own evaluator (all five segment).
    assert table['mask_AP'].between(0, 1).all()
    assert 'exported' not in table
    # Two images a step (the BN statistics a random backbone tests with
    # come from them): one per micro-batch, accumulated.
    assert (table['placement'] == '1 x 1 x 2').all()
    # No network here: each row says which initial weights it went without.
    assert table['weights'].str.len().gt(0).all()


@pytest.mark.slow
def test_one_config_of_each_export_graph_exports_with_parity(checked):
    _, trained, status, table = checked
    assert status == 0, table.to_string()
    assert list(table['config']) == list(EXPORTED)
    assert table['ok'].all()
    assert (table['exported'] == 'yes, parity ok').all()
    assert (table['mask_pixel_unexplained'] == 0).all()
    assert (table['max_mask_prob_abs'] < 1e-3).all()
    # The rows of the exported runs are those the first call trained.
    again = trained.set_index('config').loc[list(EXPORTED)]
    assert list(again['detections']) == list(table['detections'])


def test_a_config_the_planner_refuses_is_a_row_with_its_error(
        coco128, tmp_path):
    broken = tmp_path / 'broken_coco.py'
    broken.write_text(
        f"_base_ = '{osp.join(PROJECT_ROOT, FAMILIES[3])}'\n"
        "model = dict(bbox_head=dict(no_such_argument=1))\n")
    status = _tool().main(['--configs', str(broken), '--work-dir',
                           str(tmp_path / 'work'), '--data-root', coco128,
                           '--val-images', '1'])
    table = pd.read_csv(tmp_path / 'work' / 'check_coco.csv')
    assert status == 1
    row = table.iloc[0]
    assert row['status'] == 'not run' and not row['ok']
    assert 'no_such_argument' in row['error'], row['error']
