"""The mask branch's own float32 rounding, and what the check-coco judge
excuses with it (issue 37, item 1)."""
import json

import pytest

from helpers import load_script
from mmdet_plugins.export.exporter import build_test_loader
from mmdet_plugins.export.float_noise import (float32_mask_noise,
                                              float32_score_noise)
from test_export_graphs import untrained


@pytest.mark.parametrize('name', ['centermask', 'mask_rcnn'])
def test_a_tiny_models_mask_branch_rounds_far_under_the_tolerance(
        name, tiny_builtin, tmp_path):
    model, cfg = untrained(name, tiny_builtin, str(tmp_path))
    data = model.data_preprocessor(next(iter(build_test_loader(cfg))),
                                   False)
    score = float32_score_noise(model, data['inputs'])
    noise = float32_mask_noise(model, data['inputs'], data['data_samples'],
                               score)
    assert set(noise) == {'mask_prob_noise', 'mask_score_noise'}
    # Measured, not zero (float64 differs), and far under 1e-3.
    assert 0 < noise['mask_prob_noise'] < 1e-5
    assert 0 <= noise['mask_score_noise'] < 1e-4
    assert not model.training


def _parity(tmp_path, summary: dict, problems: list) -> str:
    path = tmp_path / 'model.parity.json'
    path.write_text(json.dumps({'summary': summary, 'problems': problems}))
    return str(path)


def test_a_mask_failure_within_twice_its_noise_is_excused(tmp_path):
    check = load_script('tools/check_coco_configs.py', 'check_coco_configs')
    summary = dict(max_score_abs=1e-5, max_mask_prob_abs=4e-3,
                   max_mask_score_abs=2.5e-4, mask_pixel_unexplained=0)
    parity = _parity(tmp_path, summary, [
        'max_mask_score_abs = 0.00025 > 0.0001',
        'max_mask_prob_abs = 0.004 > 0.001', 'segm AP differs by 0.002'])
    noise = dict(score_noise=1e-5, mask_prob_noise=2.1e-3,
                 mask_score_noise=1.3e-4)
    assert check.judge_failed_parity(parity, noise)
    # Beyond 2 x the noise of that same quantity: a failure.
    assert not check.judge_failed_parity(
        parity, dict(noise, mask_prob_noise=1.9e-3))
    assert not check.judge_failed_parity(
        parity, dict(noise, mask_score_noise=1.2e-4))
    # The scores' noise alone excuses no mask figure.
    assert not check.judge_failed_parity(parity, 1.0)


def test_unexplained_flips_are_never_excused(tmp_path):
    check = load_script('tools/check_coco_configs.py', 'check_coco_configs')
    parity = _parity(tmp_path, dict(max_score_abs=0., max_mask_prob_abs=0.,
                                    mask_pixel_unexplained=3),
                     ['mask_pixel_unexplained = 3 > 0'])
    assert not check.judge_failed_parity(parity, dict(
        score_noise=1., mask_prob_noise=1., mask_score_noise=1.))


def test_a_noise_spanning_the_probabilities_excuses_nothing(tmp_path):
    # A random VoVNet-99 (make check-coco): float32 mask probabilities
    # 0.998 from float64, so 2 x noise covers any difference, a wrong
    # graph's too: undecidable, not within noise.
    check = load_script('tools/check_coco_configs.py', 'check_coco_configs')
    parity = _parity(tmp_path, dict(max_score_abs=0., max_mask_prob_abs=1.,
                                    mask_pixel_unexplained=0),
                     ['max_mask_prob_abs = 1 > 0.001'])
    noise = dict(score_noise=0., mask_prob_noise=0.998, mask_score_noise=0.)
    assert check.saturated_noise(noise) == ['mask_prob_noise']
    assert not check.judge_failed_parity(parity, noise)
