"""RetinaMask's self-adjusting smooth L1 loss (Fu et al., arXiv 1901.03353)."""
from typing import Dict, Optional

import torch
import torch.distributed as dist
from mmdet.models.losses.utils import weight_reduce_loss
from mmdet.registry import MODELS
from torch import Tensor, nn


@MODELS.register_module()
class SelfAdjustingSmoothL1Loss(nn.Module):
    """Smooth L1 whose per-coordinate β follows the regression error.

    For each coordinate ``c`` the loss keeps running statistics of
    ``|pred - target|`` over the positive entries (``weight > 0``) of each
    training batch::

        mean_c <- (1 - m) * mean_c + m * batch_mean_c
        var_c  <- (1 - m) * var_c  + m * batch_var_c      (unbiased)
        beta_c  = clamp(mean_c - var_c, min_beta, beta_max)   (detached)

    starting from ``mean = beta_max``, ``var = 0``. The statistics are
    updated before β is used, only in training mode, and only for the
    coordinates with at least two positive entries in the batch (an unbiased
    variance needs two). The loss is then the usual smooth L1 with that β.

    Differences from the official code (maskrcnn-benchmark
    ``AdjustSmoothL1Loss``), each selectable:

    - The statistics are buffers named ``running_mean`` and ``running_var``
      of a registered submodule, so checkpoints carry them and a resumed run
      continues with the same β. In the official code the loss lives in a
      plain object outside the model's modules: its statistics are not
      saved and restart from β̂ after a resume.
    - ``sync_stats=True`` sums the batch statistics over all processes
      (one all-reduce of count, sum and sum of squares per coordinate) so
      every GPU uses the same β. The official code (default here:
      ``False``) keeps per-GPU statistics.
    - The official code updates with every entry it is given (it is only
      called on positives) and has no guard for a single positive, whose
      variance is NaN; here non-positive entries are masked out by
      ``weight`` and batches with fewer than two positives leave the
      statistics unchanged.

    Args:
        beta_max: β̂, the upper bound of β and the initial running mean.
            0.11 (= 1/9) in RetinaMask.
        momentum: Weight ``m`` of the new batch. 0.1 in RetinaMask.
        min_beta: Lower bound of β.
        num_features: Coordinates per entry (4 for box deltas).
        sync_stats: All-reduce the batch statistics under distributed
            training.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight: Multiplier of the loss.
    """

    def __init__(self,
                 beta_max: float = 0.11,
                 momentum: float = 0.1,
                 min_beta: float = 1e-3,
                 num_features: int = 4,
                 sync_stats: bool = False,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if not 0 < min_beta <= beta_max:
            raise ValueError(f'need 0 < min_beta <= beta_max, got '
                             f'{min_beta}, {beta_max}')
        self.beta_max = beta_max
        self.momentum = momentum
        self.min_beta = min_beta
        self.num_features = num_features
        self.sync_stats = sync_stats
        self.reduction = reduction
        self.loss_weight = loss_weight
        self.register_buffer('running_mean',
                             torch.full((num_features, ), float(beta_max)))
        self.register_buffer('running_var', torch.zeros(num_features))

    @property
    def beta(self) -> Tensor:
        """The current β per coordinate (detached)."""
        return (self.running_mean - self.running_var).clamp(
            self.min_beta, self.beta_max).detach()

    def log_vars(self) -> Dict[str, Tensor]:
        """β per coordinate, for the training log (not losses)."""
        names = ('dx', 'dy', 'dw', 'dh') if self.num_features == 4 else \
            [str(i) for i in range(self.num_features)]
        return {f'sasl1_beta_{n}': b for n, b in zip(names, self.beta)}

    @torch.no_grad()
    def update_statistics(self, abs_error: Tensor, positive: Tensor) -> None:
        """Fold one batch into the running statistics.

        Args:
            abs_error: ``|pred - target|``, shape (N, num_features).
            positive: Bool mask of the entries that count, same shape.
        """
        err = abs_error.double() * positive
        stats = torch.stack([positive.sum(0).double(), err.sum(0),
                             (err * err).sum(0)])
        if self.sync_stats and dist.is_available() and dist.is_initialized():
            dist.all_reduce(stats)
        count, total, total_sq = stats
        valid = count >= 2
        if not valid.any():
            return
        mean = total[valid] / count[valid]
        var = (total_sq[valid] - count[valid] * mean * mean) / (
            count[valid] - 1)
        m = self.momentum
        self.running_mean[valid] = ((1 - m) * self.running_mean[valid].double()
                                    + m * mean).to(self.running_mean.dtype)
        self.running_var[valid] = ((1 - m) * self.running_var[valid].double()
                                   + m * var.clamp(min=0)).to(
                                       self.running_var.dtype)

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                **kwargs) -> Tensor:
        """Loss of ``pred`` (N, num_features) against ``target``.

        Args:
            weight: Per-entry weights; entries with weight > 0 are the
                positives whose errors update the statistics.
            avg_factor: Normaliser of the ``'mean'`` reduction.
        """
        reduction = reduction_override or self.reduction
        if target.numel() == 0:
            return pred.sum() * 0
        abs_error = (pred - target).abs()
        if self.training:
            positive = (weight > 0) if weight is not None else \
                torch.ones_like(abs_error, dtype=torch.bool)
            self.update_statistics(abs_error.detach(),
                                   positive.expand_as(abs_error))
        beta = self.beta.to(abs_error.dtype)
        loss = torch.where(abs_error < beta,
                           0.5 * abs_error * abs_error / beta,
                           abs_error - 0.5 * beta)
        if weight is not None and weight.dim() == loss.dim() - 1:
            weight = weight.unsqueeze(-1)
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction,
                                                     avg_factor)
