"""A checkpoint that does not fit the config is refused wherever a model is
loaded for export, cost measurement or analysis, naming the keys; partial
loading only on request."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from experiments.store import project_path
from helpers import load_script
from mmdet_plugins.export.checkpoint import (CheckpointMismatchError,
                                             load_weights)
from mmdet_plugins.export.exporter import load_detector

export_onnx = load_script('tools/export_onnx.py', 'export_onnx_strict')
count_mask_positives = load_script('tools/count_mask_positives.py',
                                   'count_mask_positives_strict')

RETINAMASK = 'configs/retinamask/retinamask_r18-tiny_fpn_builtin.py'
MASK_RCNN = 'configs/mask_rcnn/mask-rcnn_r18-tiny_fpn_builtin.py'


@pytest.fixture(scope='module')
def retinamask_checkpoint(tmp_path_factory):
    """The tiny RetinaMask's (untrained) weights as an mmengine checkpoint."""
    model, _ = load_detector(project_path(RETINAMASK), None)
    path = str(tmp_path_factory.mktemp('ckpt') / 'retinamask_tiny.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path


def test_export_tool_refuses_another_models_checkpoint(
        retinamask_checkpoint, tmp_path, capsys):
    out = tmp_path / 'exported' / 'model.onnx'
    status = export_onnx.main([project_path(MASK_RCNN),
                               retinamask_checkpoint, '--out', str(out)])
    err = capsys.readouterr().err
    print(err)  # the message, for the record (pytest -s)
    assert status == 2
    lines = [line for line in err.splitlines() if line.startswith('error:')]
    assert len(lines) == 1
    line = lines[0]
    assert f'checkpoint {retinamask_checkpoint} does not fit config' in line
    assert '28 missing key(s) (neck.lateral_convs.3.conv.weight' in line
    assert 'rpn_head.rpn_conv.weight' in line
    assert '28 unexpected key(s) (neck.fpn_convs.4.conv.weight' in line
    assert '3 of another shape' in line
    assert '--allow-partial-checkpoint' in line
    assert not out.exists() and not out.parent.exists()


def test_partial_loading_only_on_request(retinamask_checkpoint, capsys):
    model, _ = load_detector(project_path(MASK_RCNN), None)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError):
        load_weights(model, retinamask_checkpoint)
    # Nothing was loaded by the refused attempt.
    assert all(torch.equal(before[k], v)
               for k, v in model.state_dict().items())
    found = load_weights(model, retinamask_checkpoint, allow_partial=True)
    assert len(found['missing']) == 28 and len(found['unexpected']) == 28
    assert 'loading the' in capsys.readouterr().err
    saved = torch.load(retinamask_checkpoint)['state_dict']
    assert torch.equal(model.state_dict()['backbone.conv1.weight'],
                       saved['backbone.conv1.weight'])


def test_a_fitting_checkpoint_loads_strictly(retinamask_checkpoint,
                                            tmp_path):
    model, _ = load_detector(project_path(RETINAMASK),
                             retinamask_checkpoint)
    saved = torch.load(retinamask_checkpoint)['state_dict']
    own = model.state_dict()
    assert own.keys() == saved.keys()
    assert all(torch.equal(own[k], saved[k]) for k in own)
    # A DDP-saved checkpoint ("module." prefix, removed as mmengine does)
    # without the BN counters (converted official weights lack them) fits.
    ddp = {f'module.{k}': v for k, v in saved.items()
           if not k.endswith('num_batches_tracked')}
    path = str(tmp_path / 'ddp.pth')
    torch.save({'state_dict': ddp}, path)
    model, _ = load_detector(project_path(RETINAMASK), None)
    assert load_weights(model, path) == dict(missing=[], unexpected=[],
                                             shapes=[])
    assert torch.equal(model.state_dict()['backbone.conv1.weight'],
                       saved['backbone.conv1.weight'])


def _run_dir(tmp_path, config: str, checkpoint: str) -> str:
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    Config.fromfile(project_path(config)).dump(str(run_dir / 'config.py'))
    (run_dir / 'last_checkpoint').write_text(checkpoint)
    return str(run_dir)


def test_cost_and_analysis_tools_refuse_it(retinamask_checkpoint, tmp_path,
                                           capsys):
    from experiments.cost.model_cost import build_trained_model
    run_dir = _run_dir(tmp_path, MASK_RCNN, retinamask_checkpoint)
    with pytest.raises(CheckpointMismatchError, match='28 missing key'):
        build_trained_model(run_dir, 'cpu')
    assert count_mask_positives.main([run_dir]) == 2
    err = capsys.readouterr().err
    assert 'error: checkpoint' in err and 'unexpected key(s)' in err
    assert osp.isfile(retinamask_checkpoint)
