"""A finished run's export to ONNX and its onnxruntime latency.

``experiments/measure_cost.py --onnxruntime`` times each run twice per
round, PyTorch then onnxruntime, on the same images and threads: the export
(``<run>/onnx/model.onnx``, made by ``mmdet_plugins.export``) is written
once and again only when the run's checkpoint is newer than it. The
onnxruntime figures go to ``<run>/cost_onnxruntime.json`` in the layout of
``cost.json``'s latency part, plus ``provider`` and ``runtime``.
"""
import os.path as osp
from typing import List

import torch

from experiments.cost.model_cost import (
    build_trained_model,
    last_checkpoint,
    measure_onnx_latency,
)
from mmdet_plugins.export.exporter import build_test_loader

ONNX_DIR = 'onnx'


def onnx_path(run_dir: str) -> str:
    return osp.join(run_dir, ONNX_DIR, 'model.onnx')


def export_run(run_dir: str) -> str:
    """``<run>/onnx/model.onnx`` of the run's last checkpoint (exported on
    the CPU when missing or older than the checkpoint)."""
    from mmdet_plugins.export.exporter import export_onnx
    path = onnx_path(run_dir)
    checkpoint = last_checkpoint(run_dir)
    if osp.isfile(path) and osp.isfile(osp.splitext(path)[0] + '.json') \
            and osp.getmtime(path) >= osp.getmtime(checkpoint):
        return path
    model, cfg = build_trained_model(run_dir, 'cpu')
    export_onnx(model, cfg, path)
    return path


def providers_for(device: str) -> List[str]:
    """onnxruntime execution providers for a ``--device`` value."""
    if device.startswith('cuda'):
        index = device.split(':')[1] if ':' in device else '0'
        return [('CUDAExecutionProvider', {'device_id': int(index)}),
                'CPUExecutionProvider']
    return ['CPUExecutionProvider']


def time_onnx_run(run_dir: str, device: str, n_images: int = 200,
                  warmup: int = 10) -> dict:
    """One round of onnxruntime timing of the run's export."""
    from mmengine.config import Config

    from mmdet_plugins.export.onnx_inference import OnnxDetector
    cfg = Config.fromfile(osp.join(run_dir, 'config.py'))
    detector = OnnxDetector(onnx_path(run_dir),
                            providers=providers_for(device),
                            threads=torch.get_num_threads())
    if device.startswith('cuda') and \
            detector.session.get_providers()[0] != 'CUDAExecutionProvider':
        raise RuntimeError(f'{run_dir}: onnxruntime has no CUDA execution '
                           f'provider here (onnxruntime-gpu is needed)')
    return measure_onnx_latency(detector, build_test_loader(cfg), n_images,
                                warmup)
