"""How far a model's own float32 forward pass is from its float64 one.

Parity between PyTorch and onnxruntime (:mod:`.parity`) compares two
float32 computations, so it can be no tighter than the model's float32
rounding. A trained detector is well conditioned: its rounding stays orders
of magnitude under the tolerances. A randomly initialised deep one need not
be: in ``make check-coco`` a random VoVNet-99 one step from initialisation
had stage-5 features of 1.6e4 (VoVNet-39: 1.9e3), and PyTorch's float32
classification logits were 0.097 from its own float64 ones (VoVNet-39:
3e-5) -- onnxruntime's scores, 5e-3 from PyTorch's, were closer to PyTorch
than PyTorch was to itself. :func:`float32_score_noise` measures that gap,
so that a failed parity can be told apart from float32 rounding;
:func:`float32_mask_noise` does the same for the mask branch (the M x M
mask probabilities, and the mask scores of a MaskIoU head) on the float32
run's own RoIs.
"""
import copy
from typing import Optional

import torch

from .mask_parity import captured_mask_probs, class_probs


def _scores(model: torch.nn.Module, x: torch.Tensor) -> list:
    feats = model.extract_feat(x)
    head = getattr(model, 'bbox_head', None) or model.rpn_head
    return [s.sigmoid() for s in head(feats)[0]]


@torch.no_grad()
def float32_score_noise(model: torch.nn.Module, inputs: torch.Tensor) -> float:
    """Largest difference between the dense head's (or the RPN's)
    classification scores in float32 and in float64 on ``inputs``.

    Args:
        model: An mmdet detector (on the CPU), in any mode; it is left as
            it was.
        inputs: A batch as the data preprocessor returns it (normalised,
            padded), float32.

    Returns:
        max |sigmoid(logit_f32) - sigmoid(logit_f64)| over every level.
    """
    was_training = model.training
    model.eval()
    try:
        single = _scores(model, inputs.float())
        double = _scores(copy.deepcopy(model).double(), inputs.double())
    finally:
        model.train(was_training)
    return max(float((a.double() - b).abs().max())
               for a, b in zip(single, double))


def _mask_branch(model: torch.nn.Module) -> Optional[tuple]:
    """``(RoI extractor, mask head, MaskIoU head or None)``, or None."""
    if getattr(model, 'mask_head', None) is not None:  # CenterMask, ...
        return (model.mask_roi_extractor, model.mask_head,
                getattr(model, 'maskiou_head', None))
    roi_head = getattr(model, 'roi_head', None)
    if getattr(roi_head, 'mask_head', None) is not None:  # Mask R-CNN
        return roi_head.mask_roi_extractor, roi_head.mask_head, None
    return None


def _mask_outputs(model, inputs, rois, kwargs, labels) -> tuple:
    """(M x M probabilities, MaskIoU or None) of the detections at
    ``rois``, computed in the model's dtype."""
    extractor, head, maskiou = _mask_branch(model)
    feats = model.extract_feat(inputs)[:extractor.num_inputs]
    mask_feats = extractor(feats, rois, **kwargs)
    logits = head(mask_feats)
    index = torch.arange(len(labels), device=logits.device)
    iou = None
    if maskiou is not None:  # as MaskOnDetectionsDetector.predict_masks
        iou = maskiou(mask_feats, logits[index, labels])[index, labels]
    return class_probs(logits, labels), iou


@torch.no_grad()
def float32_mask_noise(model: torch.nn.Module, inputs: torch.Tensor,
                       data_samples: list, score_noise: float = 0.0
                       ) -> dict:
    """The mask branch's float32-vs-float64 gap on the float32 run's RoIs.

    The float32 ``predict`` on ``inputs`` fixes the RoIs (as the RoI
    extractor receives them), the labels and the scores; on those, the
    mask branch runs from float32 and from float64 features.

    Args:
        model: An mmdet detector (on the CPU); left as it was.
        inputs: A preprocessed batch of one image, float32.
        data_samples: Its data samples.
        score_noise: :func:`float32_score_noise` on the same inputs: the
            box scores' own gap, part of a MaskIoU mask score's.

    Returns:
        ``mask_prob_noise`` (max |p32 - p64| of the M x M probabilities)
        and ``mask_score_noise`` (over max(|mask score|, 1), as the parity
        compares them; with a MaskIoU head, mask score = score x IoU, to
        first order ``score_noise`` x |IoU| + |score| x |IoU32 - IoU64|;
        without, the scores' own), or empty for a model without masks or
        without detections.
    """
    if _mask_branch(model) is None:
        return {}
    was_training = model.training
    model.eval()
    seen = []
    hook = _mask_branch(model)[0].register_forward_pre_hook(
        lambda _, args, kwargs: seen.append((args[1], kwargs)),
        with_kwargs=True)
    try:
        with captured_mask_probs(model) as captured:
            model.predict(inputs.float(), copy.deepcopy(data_samples))
        hook.remove()
        if not captured or not len(captured[0]['labels']):
            return {}
        rois, kwargs = seen[-1]
        labels = torch.as_tensor(captured[0]['labels'], device=rois.device)
        scores = torch.as_tensor(captured[0]['scores'],
                                 device=rois.device).double()
        p32, iou32 = _mask_outputs(model, inputs.float(), rois, kwargs,
                                   labels)
        p64, iou64 = _mask_outputs(copy.deepcopy(model).double(),
                                   inputs.double(), rois.double(), kwargs,
                                   labels)
    finally:
        hook.remove()
        model.train(was_training)
    out = dict(mask_prob_noise=float((p32.double() - p64).abs().max()))
    if iou32 is None:
        out['mask_score_noise'] = float(score_noise)
        return out
    gap = score_noise * iou64.abs() + scores.abs() * (iou32.double()
                                                      - iou64).abs()
    out['mask_score_noise'] = float(
        (gap / (scores * iou64).abs().clamp(min=1.0)).max())
    return out


def first_test_batch(model: torch.nn.Module, cfg) -> dict:
    """The first test image of ``cfg``'s test split as the model sees it
    (``inputs``, ``data_samples``; the export's parity check starts from
    the same one)."""
    from mmengine.runner import Runner
    loader = Runner.build_dataloader(cfg.test_dataloader)
    return model.data_preprocessor(next(iter(loader)), False)


def first_test_inputs(model: torch.nn.Module, cfg) -> torch.Tensor:
    """:func:`first_test_batch`'s ``inputs``."""
    return first_test_batch(model, cfg)['inputs']
