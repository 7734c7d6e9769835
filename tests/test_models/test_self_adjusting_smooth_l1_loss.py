import numpy as np
import pytest
import torch

from mmdet_plugins.models.losses import SelfAdjustingSmoothL1Loss


def _reference_step(mean, var, err, pos, momentum=0.1, beta_max=0.11,
                    min_beta=1e-3):
    """The definition, written out per coordinate with numpy."""
    mean, var = mean.copy(), var.copy()
    for c in range(err.shape[1]):
        values = err[pos[:, c], c]
        if len(values) >= 2:
            mean[c] = (1 - momentum) * mean[c] + momentum * values.mean()
            var[c] = (1 - momentum) * var[c] + momentum * values.var(ddof=1)
    beta = np.clip(mean - var, min_beta, beta_max)
    loss = np.where(err < beta, 0.5 * err**2 / beta, err - 0.5 * beta)
    return mean, var, beta, loss


def test_statistics_beta_and_loss_follow_the_definition_step_by_step():
    rng = np.random.default_rng(0)
    module = SelfAdjustingSmoothL1Loss(beta_max=0.11).train()
    mean, var = np.full(4, 0.11), np.zeros(4)
    for step in range(30):
        n = int(rng.integers(0, 12))
        # Errors of a few hundredths: mean - var falls below beta_max.
        target = rng.normal(0, 1, (n, 4))
        pred = target + rng.normal(0, 0.04, (n, 4))
        weight = (rng.uniform(size=(n, 1)) < 0.6).repeat(4, 1).astype(float)
        err = np.abs(pred - target)
        mean, var, beta, loss = _reference_step(mean, var, err, weight > 0)
        avg = max(weight.sum(), 1.0)
        out = module(torch.tensor(pred, dtype=torch.float32),
                     torch.tensor(target, dtype=torch.float32),
                     torch.tensor(weight, dtype=torch.float32),
                     avg_factor=avg)
        np.testing.assert_allclose(module.running_mean.numpy(), mean,
                                   rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(module.running_var.numpy(), var,
                                   rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(module.beta.numpy(), beta, rtol=1e-5,
                                   atol=1e-7)
        expected = (loss * weight).sum() / avg if n else 0.0
        assert float(out) == pytest.approx(expected, rel=1e-4, abs=1e-7)
    # The run moved β away from its start on some coordinate.
    assert not np.allclose(module.beta.numpy(), 0.11)


def test_non_positive_entries_are_ignored():
    torch.manual_seed(0)
    pred, target = torch.randn(10, 4) * 0.1, torch.randn(10, 4) * 0.1
    weight = torch.zeros(10, 4)
    weight[:5] = 1
    a = SelfAdjustingSmoothL1Loss().train()
    b = SelfAdjustingSmoothL1Loss().train()
    loss_a = a(pred, target, weight, avg_factor=5)
    pred_b = pred.clone()
    pred_b[5:] += 100  # wild values where weight == 0
    loss_b = b(pred_b, target, weight, avg_factor=5)
    assert torch.equal(a.running_mean, b.running_mean)
    assert torch.equal(a.running_var, b.running_var)
    assert torch.allclose(loss_a, loss_b)


def test_fewer_than_two_positives_leave_statistics_unchanged():
    module = SelfAdjustingSmoothL1Loss().train()
    weight = torch.zeros(6, 4)
    weight[2] = 1
    module(torch.rand(6, 4), torch.rand(6, 4), weight, avg_factor=1)
    assert torch.equal(module.running_mean, torch.full((4, ), 0.11))
    assert torch.equal(module.running_var, torch.zeros(4))


def test_eval_mode_does_not_update_and_beta_is_detached():
    module = SelfAdjustingSmoothL1Loss().eval()
    pred = torch.rand(8, 4, requires_grad=True)
    loss = module(pred, torch.rand(8, 4), torch.ones(8, 4), avg_factor=8)
    assert torch.equal(module.running_mean, torch.full((4, ), 0.11))
    loss.backward()
    assert pred.grad is not None and not module.beta.requires_grad


def test_statistics_survive_a_checkpoint_round_trip(tmp_path):
    module = SelfAdjustingSmoothL1Loss().train()
    for _ in range(3):
        module(torch.rand(16, 4), torch.rand(16, 4), torch.ones(16, 4),
               avg_factor=16)
    holder = torch.nn.Sequential(module)
    path = tmp_path / 'ckpt.pth'
    torch.save(holder.state_dict(), path)
    state = torch.load(path)
    assert set(state) == {'0.running_mean', '0.running_var'}
    restored = torch.nn.Sequential(SelfAdjustingSmoothL1Loss())
    restored.load_state_dict(state)
    assert torch.equal(restored[0].running_mean, module.running_mean)
    assert torch.equal(restored[0].running_var, module.running_var)
    assert torch.equal(restored[0].beta, module.beta)
    assert not torch.equal(module.running_mean, torch.full((4, ), 0.11))
