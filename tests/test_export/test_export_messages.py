"""What an export prints: no harmless torch noise, paths as a user reads
them."""
import logging
import os.path as osp
import subprocess
import sys
import warnings

import pytest

from experiments.store import PROJECT_ROOT, project_path

RETINAMASK = 'configs/retinamask/retinamask_r18-tiny_fpn_builtin.py'
REGISTRY_LOG = 'torch.onnx._internal.exporter._registration'


class _Keep(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_quiet_export_drops_only_torchs_harmless_messages():
    from torch.onnx._internal.exporter._registration import _get_overload
    from torch.utils._pytree import LeafSpec

    from mmdet_plugins.export.exporter import quiet_export
    kept = _Keep()
    logger = logging.getLogger(REGISTRY_LOG)
    # Whatever an earlier test in this process did to torch's loggers (an
    # export under pytest-xdist shares the worker), this one listens.
    saved = logger.level, logger.disabled, logging.root.manager.disable
    logger.setLevel(logging.WARNING)
    logger.disabled = False
    logging.disable(logging.NOTSET)
    logger.addHandler(kept)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            # What torch.onnx.export does without torchvision installed.
            _get_overload('torchvision::nms')
            LeafSpec()
            assert kept.messages == [
                'torchvision is not installed. Skipping torchvision::nms']
            assert [w.category for w in caught] == [FutureWarning]
            with quiet_export():
                _get_overload('torchvision::roi_align')
                LeafSpec()
                logger.warning('another problem')
                warnings.warn('another deprecation', FutureWarning)
    finally:
        logger.removeHandler(kept)
        logger.setLevel(saved[0])
        logger.disabled = saved[1]
        logging.disable(saved[2])
    assert kept.messages[1:] == ['another problem']
    assert [str(w.message) for w in caught[1:]] == ['another deprecation']
    # Once the export is over, nothing stays silenced.
    assert logger.filters == []


@pytest.mark.slow
def test_the_export_prints_no_noise_and_plain_paths(tmp_path):
    import torch

    from mmdet_plugins.export.exporter import load_detector
    model, _ = load_detector(project_path(RETINAMASK), None)
    checkpoint = str(tmp_path / 'w.pth')
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    (tmp_path / 'main').mkdir()   # the checkout, say
    out = str(tmp_path / 'main' / '..' / 'exports' / 'model.onnx')
    done = subprocess.run(
        [sys.executable, 'tools/export_onnx.py', project_path(RETINAMASK),
         checkpoint, '--out', out, '--no-check'], cwd=PROJECT_ROOT,
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert 'torchvision is not installed' not in done.stderr
    assert 'FutureWarning' not in done.stderr, done.stderr
    plain = str(tmp_path / 'exports' / 'model')
    [line] = [line for line in done.stdout.splitlines()
              if 'exported in' in line]
    assert line.startswith(f'{plain}.onnx: RetinaMask exported in '), line
    assert line.endswith(f'; {plain}.json and onnx_inference.py beside it')
    assert '/../' not in done.stdout
    assert osp.isfile(f'{plain}.onnx')
