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
so that a failed parity can be told apart from float32 rounding.
"""
import copy

import torch


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


def first_test_inputs(model: torch.nn.Module, cfg) -> torch.Tensor:
    """The first test image of ``cfg``'s test split as the model sees it
    (the export's parity check starts from the same one)."""
    from mmengine.runner import Runner
    loader = Runner.build_dataloader(cfg.test_dataloader)
    data = model.data_preprocessor(next(iter(loader)), False)
    return data['inputs']
