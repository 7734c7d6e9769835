"""What a trained run costs at inference: FLOPs and latency.

FLOPs follow mmdet's ``tools/analysis_tools/get_flops.py``: mmengine's
``FlopAnalyzer`` traces the model's ``tensor`` forward on the first test
images after the data preprocessor, and counts one fused multiply-add as one
FLOP (fvcore's convention, the one the MMDetection model zoo prints). What
that forward covers differs by detector -- Mask R-CNN's includes the RoI
heads on the RPN proposals, CenterMask's and RetinaMask's only the dense
head -- so whole-model FLOPs are comparable within a family, and the
backbone and neck figures across all of them. The mask head on detections is
data-dependent and not traced.

Latency follows mmdet's ``InferenceBenchmark``: batch size 1, fp32, each
image timed from the data preprocessor to the post-processed result
(``model.test_step``; data loading excluded), after warm-up images, with the
device synchronised around every image. The per-image times are kept, so
two models timed on the same images can be compared paired on images.
Timing is repeated in rounds that visit every run in turn
(``experiments/measure_cost.py --rounds``): a machine's speed drifts over
minutes, and interleaving spreads the drift over all arms instead of
charging it to whichever arm was timed at the wrong moment.
"""
import os
import os.path as osp
import platform
import statistics
import time
from functools import partial
from typing import Callable, Dict, List, Tuple

import torch

from experiments.store import last_checkpoint_target
from mmdet_plugins.export.exporter import build_test_loader


def build_trained_model(run_dir: str, device: str):
    """The run's model with its final weights, in eval mode on ``device``.

    The checkpoint loads strictly (:mod:`mmdet_plugins.export.checkpoint`):
    a run's own checkpoint fits its own config, so anything else is
    measured on a model that is not the run's.

    Raises:
        FileNotFoundError: the run has no ``config.py`` or no checkpoint.
        CheckpointMismatchError: the checkpoint does not fit the config
            (one line naming the keys).
    """
    from mmdet_plugins.export.exporter import load_detector
    config = osp.join(run_dir, 'config.py')
    if not osp.isfile(config):
        raise FileNotFoundError(f'{config}: run has no resolved config')
    return load_detector(config, last_checkpoint(run_dir),
                         trusted_dir=run_dir, device=device)


def last_checkpoint(run_dir: str) -> str:
    target = last_checkpoint_target(run_dir)
    if not target or not osp.isfile(target):
        raise FileNotFoundError(f'{run_dir}: no checkpoint to measure '
                                f'(last_checkpoint is missing or stale)')
    return target


def count_flops(model: torch.nn.Module, loader, n_images: int = 5) -> dict:
    """Mean FLOPs over the first ``n_images`` test images.

    Returns:
        ``flops`` (whole tensor forward), ``backbone_flops``,
        ``neck_flops``, ``input_hw`` (mean padded input height and width)
        and ``unsupported_ops`` (operators the analyzer skipped, with
        counts: their FLOPs are missing from the totals).
    """
    from mmengine.analysis import FlopAnalyzer
    totals: Dict[str, List[float]] = {'': [], 'backbone': [], 'neck': []}
    sizes, unsupported = [], {}
    forward = model.forward
    try:
        for i, data in enumerate(loader):
            if i >= n_images:
                break
            with torch.no_grad():
                data = model.data_preprocessor(data, False)
            model.forward = partial(forward,
                                    data_samples=data['data_samples'])
            analyzer = FlopAnalyzer(model, data['inputs'])
            analyzer.unsupported_ops_warnings(False)
            analyzer.uncalled_modules_warnings(False)
            analyzer.tracer_warnings('none')
            by_module = analyzer.by_module()
            for name in totals:
                totals[name].append(float(by_module.get(name, 0)))
            for op, n in analyzer.unsupported_ops().items():
                unsupported[op] = unsupported.get(op, 0) + n
            sizes.append(tuple(data['inputs'].shape[-2:]))
    finally:
        model.forward = forward
    if not sizes:
        raise ValueError('the test split has no images to count FLOPs on')
    return dict(flops=statistics.fmean(totals['']),
                backbone_flops=statistics.fmean(totals['backbone']),
                neck_flops=statistics.fmean(totals['neck']),
                flops_images=len(sizes),
                input_hw=[round(statistics.fmean(s[k] for s in sizes), 1)
                          for k in (0, 1)],
                unsupported_ops=unsupported)


def device_name(device: str) -> str:
    if device.startswith('cuda'):
        return torch.cuda.get_device_name(torch.device(device))
    name = platform.processor() or platform.machine()
    if osp.isfile('/proc/cpuinfo'):
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    name = line.split(':', 1)[1].strip()
                    break
    return f'{name} ({torch.get_num_threads()} threads)'


def _machine_cpu_seconds() -> float:
    """CPU seconds all processes have used (``/proc/stat``), or NaN."""
    if not osp.isfile('/proc/stat'):
        return float('nan')
    with open('/proc/stat') as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf('SC_CLK_TCK')


def _sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize(torch.device(device))


def _time_images(predict: Callable[[dict], Tuple[int, int]], loader,
                 device: str, n_images: int, warmup: int) -> dict:
    """Time ``predict(data) -> (img_id, detections)`` per image."""
    times: Dict[int, List[float]] = {}
    # The mask branch runs once per detection: its share of the time
    # follows how many detections the weights produce.
    detections: List[int] = []
    done = 0
    # Other work on the machine inflates timings (CPU timings of the tiny
    # models tripled next to a test run here): measure how much there was.
    start_wall, start_all = time.perf_counter(), _machine_cpu_seconds()
    start_own = sum(os.times()[:2])
    while done < warmup + n_images:
        seen = done
        for data in loader:
            if done >= warmup + n_images:
                break
            _sync(device)
            start = time.perf_counter()
            img_id, found = predict(data)
            _sync(device)
            ms = 1000 * (time.perf_counter() - start)
            if done >= warmup:
                times.setdefault(img_id, []).append(ms)
                detections.append(found)
            done += 1
        if done == seen:
            raise ValueError('the test split has no images to time')
    wall = time.perf_counter() - start_wall
    other = (_machine_cpu_seconds() - start_all
             - (sum(os.times()[:2]) - start_own)) / wall
    per_image = {str(k): statistics.median(v) for k, v in times.items()}
    return dict(latency_ms=statistics.median(per_image.values()),
                timed_images=sum(len(v) for v in times.values()),
                warmup_images=warmup,
                per_image_ms=per_image,
                other_cpu_load=round(max(other, 0.0), 3),
                detections_per_image=statistics.fmean(detections),
                device=device, device_name=device_name(device))


def measure_latency(model: torch.nn.Module, loader, device: str,
                    n_images: int = 200, warmup: int = 10) -> dict:
    """Per-image inference time in ms on ``device`` (batch size 1).

    The first ``warmup`` images are run but not timed; when the split has
    fewer than ``warmup + n_images`` images the loader is cycled, so a small
    split still yields ``n_images`` timings (an image timed more than once
    keeps the median of its times).

    Returns:
        ``latency_ms`` (median over images of ``per_image_ms``),
        ``timed_images`` (timings), ``warmup_images``, ``per_image_ms``
        ({image id: ms}), ``other_cpu_load`` (cores' worth of CPU that
        other processes used while timing), ``detections_per_image``,
        ``device``, ``device_name``.
    """
    def predict(data: dict) -> Tuple[int, int]:
        with torch.no_grad():
            out = model.test_step(data)
        return int(out[0].metainfo['img_id']), len(out[0].pred_instances)

    return _time_images(predict, loader, device, n_images, warmup)


def measure_onnx_latency(detector, loader, n_images: int = 200,
                         warmup: int = 10) -> dict:
    """:func:`measure_latency` of an exported model under onnxruntime.

    Timed over the same span as PyTorch's ``test_step``: from the test
    pipeline's resized image through normalisation and padding, the
    session, box rescaling and mask pasting
    (``OnnxDetector.from_resized``). ``device`` names the execution
    provider's device; ``provider`` the provider.
    """
    from mmdet_plugins.export.parity import detect_batch

    def predict(data: dict) -> Tuple[int, int]:
        img_id, found = detect_batch(detector, data)
        return img_id, len(found['scores'])

    provider = detector.session.get_providers()[0]
    device = 'cuda' if provider.startswith(('CUDA', 'Tensorrt')) else 'cpu'
    timing = _time_images(predict, loader, 'cpu', n_images, warmup)
    if device == 'cuda':
        timing.update(device='cuda', device_name=device_name('cuda'))
    import onnxruntime
    timing.update(provider=provider,
                  runtime=f'onnxruntime {onnxruntime.__version__}')
    return timing


def count_run_flops(run_dir: str, device: str, flops_images: int = 5
                    ) -> dict:
    """FLOPs of one finished run and what they were counted on."""
    model, cfg = build_trained_model(run_dir, device)
    cost = dict(run_dir=run_dir, torch=torch.__version__,
                precision='fp32', batch_size=1,
                flops_convention='1 fused multiply-add = 1 FLOP '
                '(mmengine FlopAnalyzer, tensor forward)',
                hostname=os.uname().nodename)
    cost.update(count_flops(model, build_test_loader(cfg), flops_images))
    return cost


def time_run(run_dir: str, device: str, n_images: int = 200,
             warmup: int = 10) -> dict:
    """One round of :func:`measure_latency` on a freshly loaded run."""
    model, cfg = build_trained_model(run_dir, device)
    timing = measure_latency(model, build_test_loader(cfg), device,
                             n_images, warmup)
    del model
    if device.startswith('cuda'):
        torch.cuda.empty_cache()
    return timing


def combine_rounds(rounds: List[dict]) -> dict:
    """One ``cost.json`` latency record from rounds of one run.

    ``latency_ms`` is the median over every (round, image) timing,
    ``per_image_ms`` each image's median over the rounds; ``per_round_ms``
    keeps every round so that analyses can resample rounds as well as
    images, and ``round_latency_ms`` shows the drift between rounds.
    """
    shared = set.intersection(*(set(r['per_image_ms']) for r in rounds))
    per_image = {k: statistics.median(r['per_image_ms'][k] for r in rounds)
                 for k in sorted(shared, key=int)}
    per_round = [{k: r['per_image_ms'][k] for k in per_image}
                 for r in rounds]
    return dict(
        latency_ms=statistics.median(ms for r in per_round
                                     for ms in r.values()),
        round_latency_ms=[r['latency_ms'] for r in rounds],
        rounds=len(rounds),
        timed_images=sum(r['timed_images'] for r in rounds),
        warmup_images=rounds[0]['warmup_images'],
        per_image_ms=per_image,
        per_round_ms=per_round,
        other_cpu_load=max(r['other_cpu_load'] for r in rounds),
        detections_per_image=statistics.fmean(
            r['detections_per_image'] for r in rounds),
        device=rounds[0]['device'], device_name=rounds[0]['device_name'],
        measured_at=time.strftime('%Y-%m-%dT%H:%M:%S'))
