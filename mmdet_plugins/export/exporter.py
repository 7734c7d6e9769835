"""Export a trained detector to ONNX, with what runs it without this project.

``export_onnx`` writes three files side by side:

- ``<name>.onnx``: the graph of :mod:`mmdet_plugins.export.graphs`
  (``torch.onnx.export`` through ``torch.export``, opset 18; image height
  and width dynamic; NMS and RoIAlign as ONNX's own ops);
- ``<name>.json``: the test pipeline's resize, the data preprocessor's
  normalisation and padding, the class names, the mask threshold;
- ``onnx_inference.py``: the numpy pre- and post-processing and an
  onnxruntime runner (:mod:`mmdet_plugins.export.onnx_inference`).
"""
import contextlib
import json
import logging
import os
import os.path as osp
import shutil
import time
import warnings
from typing import Iterator, Optional, Tuple

import torch
from mmengine.config import Config

from . import onnx_inference
from .checkpoint import CheckpointMismatchError, load_weights  # noqa: F401
from .graphs import OUTPUT_NAMES, UnsupportedModelError, build_export_graph
from .onnx_ops import OPSET, translation_table

# The traced height and width are multiples of the preprocessor's pad size
# divisor (what it feeds the network), from 160 to 4096 px at divisor 32:
# torch.export takes every traced size to be >= 2 (a size-1 dim would
# broadcast), so the stride-128 level (P7) needs an input side > 128 px.
# That is a bound of the trace only: the ONNX graph's dims are free, and the
# tests run 128 px inputs (1 x 1 P7) through onnxruntime against PyTorch.
MIN_SIDE, MAX_SIDE = 129, 4096
# Traced on a random input of this size (its values never matter: no branch
# of the graph depends on data).
SAMPLE_HW = (320, 416)


class _DropTorchvisionSkips(logging.Filter):
    """Drops torch's "torchvision is not installed. Skipping
    torchvision::<op>" records (see :func:`quiet_export`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith('torchvision is not installed')


@contextlib.contextmanager
def quiet_export() -> Iterator[None]:
    """Silence two messages ``torch.onnx.export`` prints on every export,
    harmless here, that users read as a failure:

    - four "torchvision is not installed. Skipping torchvision::nms /
      roi_align / roi_pool / deform_conv2d" warnings: the ONNX registry
      offers translations of torchvision's ops, which these graphs never
      call (NMS and RoIAlign are the project's own ops,
      :mod:`.onnx_ops`, translated to ONNX's); logged by that one logger,
      only those records are dropped;
    - torch's ``FutureWarning`` "`isinstance(treespec, LeafSpec)` is
      deprecated": torch.export copying its own pytree specs; nothing in
      this project uses ``LeafSpec``.

    Every other warning and log record still shows.
    """
    registry_log = logging.getLogger(
        'torch.onnx._internal.exporter._registration')
    drop = _DropTorchvisionSkips()
    registry_log.addFilter(drop)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                'ignore', category=FutureWarning,
                message=r'`isinstance\(treespec, LeafSpec\)` is deprecated')
            yield
    finally:
        registry_log.removeFilter(drop)


def load_detector(config: str, checkpoint: Optional[str],
                  trusted_dir: Optional[str] = None,
                  device: str = 'cpu', allow_partial: bool = False
                  ) -> Tuple[torch.nn.Module, Config]:
    """A built detector with ``checkpoint``'s weights, in eval mode.

    Args:
        config: An mmdet config file (a run's ``config.py`` or a project
            config).
        checkpoint: The weights; None keeps the initialisation.
        trusted_dir: Checkpoints below it load with the full unpickler (a
            run's own work dir; mmengine checkpoints pickle more than
            tensors); default: the checkpoint's own directory.
        allow_partial: Load only the keys that fit (see
            :func:`load_weights`); by default a checkpoint that does not
            fit the config raises :class:`CheckpointMismatchError`.
    """
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    register_all_modules(init_default_scope=True)
    import mmdet_plugins  # noqa: F401 -- registers the project's modules
    if not osp.isfile(config):
        raise FileNotFoundError(f'{config}: no such config file')
    cfg = Config.fromfile(config)
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        load_weights(model, checkpoint, f'config {config}', trusted_dir,
                     allow_partial)
    return model.to(device).eval(), cfg


def build_test_loader(cfg: Config):
    """The config's test split, one image per batch, in this process."""
    from mmengine.runner import Runner
    loader = cfg.test_dataloader.copy()
    loader.update(batch_size=1, num_workers=0, persistent_workers=False)
    return Runner.build_dataloader(loader)


def _test_resize(cfg: Config) -> dict:
    pipeline = cfg.test_dataloader.dataset.pipeline
    resizes = [t for t in pipeline if t['type'] in ('Resize', 'FixShapeResize',
                                                    'RandomResize',
                                                    'RandomChoiceResize')]
    if len(resizes) != 1 or resizes[0]['type'] != 'Resize' or \
            'scale' not in resizes[0]:
        raise UnsupportedModelError(
            'test_dataloader.dataset.pipeline: the export runs one '
            f'Resize(scale=..., keep_ratio=...), found {resizes}')
    scale = resizes[0]['scale']
    if isinstance(scale, int):
        scale = (scale, scale)
    return dict(scale=[int(s) for s in scale],
                keep_ratio=bool(resizes[0].get('keep_ratio', False)))


def export_meta(model: torch.nn.Module, cfg: Config) -> dict:
    """What :mod:`onnx_inference` needs besides the graph."""
    pre = model.data_preprocessor
    if getattr(pre, 'batch_augments', None):
        raise UnsupportedModelError('data_preprocessor.batch_augments has '
                                    'no export path')
    normalise = getattr(pre, '_enable_normalize', False)
    mask_cfg = (model.mask_test_cfg if hasattr(model, 'mask_test_cfg')
                else model.test_cfg.rcnn)
    classes = cfg.test_dataloader.dataset.get('metainfo', {}).get('classes')
    return dict(
        model=type(model).__name__,
        outputs=list(OUTPUT_NAMES),
        resize=_test_resize(cfg),
        preprocess=dict(
            bgr_to_rgb=bool(getattr(pre, '_channel_conversion', False)),
            mean=pre.mean.flatten().tolist() if normalise else [0., 0., 0.],
            std=pre.std.flatten().tolist() if normalise else [1., 1., 1.],
            pad_size_divisor=int(pre.pad_size_divisor),
            pad_value=float(pre.pad_value)),
        classes=list(classes) if classes else None,
        mask_thr_binary=float(mask_cfg.mask_thr_binary),
        opset=OPSET, torch=torch.__version__)


def export_onnx(model: torch.nn.Module, cfg: Config, out_path: str,
                sample: Optional[Tuple[torch.Tensor, torch.Tensor]] = None
                ) -> dict:
    """Export ``model`` to ``out_path`` (+ ``.json`` and the runner).

    Args:
        model: A built detector in eval mode (:func:`load_detector`).
        cfg: Its config (test pipeline, classes).
        out_path: The ``.onnx`` to write.
        sample: ``(image, img_shape)`` traced on; default a random
            :data:`SAMPLE_HW` image.

    Returns:
        The meta written to the ``.json``, plus ``export_seconds``.

    Raises:
        UnsupportedModelError: the model has no export path.
    """
    graph = build_export_graph(model)
    meta = export_meta(model, cfg)
    if sample is None:
        # On the model's device (load_detector may put it on a GPU); the
        # same image whatever the device: drawn on the CPU, then moved.
        device = next(model.parameters()).device
        gen = torch.Generator().manual_seed(0)
        sample = (torch.randn(1, 3, *SAMPLE_HW, generator=gen).to(device),
                  torch.tensor([SAMPLE_HW[0], SAMPLE_HW[1] - 10],
                               device=device))
    div = meta['preprocess']['pad_size_divisor']
    height, width = (div * torch.export.Dim(
        f'{side}_div{div}', min=-(-MIN_SIDE // div), max=MAX_SIDE // div)
        for side in ('height', 'width'))
    os.makedirs(osp.dirname(osp.abspath(out_path)), exist_ok=True)
    start = time.perf_counter()
    with torch.no_grad(), quiet_export():
        program = torch.onnx.export(
            graph, sample, dynamo=True, opset_version=OPSET,
            input_names=['image', 'img_shape'],
            output_names=list(OUTPUT_NAMES),
            dynamic_shapes={'image': {2: height, 3: width},
                            'img_shape': None},
            custom_translation_table=translation_table(),
            report=False, verbose=False)
    with quiet_export():
        program.save(out_path)
    meta['export_seconds'] = round(time.perf_counter() - start, 1)
    with open(osp.splitext(out_path)[0] + '.json', 'w') as f:
        json.dump(meta, f, indent=1)
    shutil.copy(onnx_inference.__file__,
                osp.join(osp.dirname(osp.abspath(out_path)),
                         'onnx_inference.py'))
    return meta
