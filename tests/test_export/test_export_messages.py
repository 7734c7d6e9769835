"""What an export prints: no harmless torch noise (the command line's
output, paths as a user reads them: tests/test_export/test_export_tool.py)."""
import logging
import warnings

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
