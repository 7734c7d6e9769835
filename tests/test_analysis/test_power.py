"""The planner's power against simulated experiments, and its inputs."""
import contextlib
import io

import numpy as np
import pytest
from pycocotools.coco import COCO

from analysis import power as pw
from analysis.coco_eval.image_eval import evaluate_images
from analysis.published import published_table
from analysis.verdicts import load_weaknesses

N_IMAGES = 400
N_SIMS = 4000
# Binomial SE of a rate near 0.5 over 4000 simulations is 0.008; the
# tolerance leaves room for the pilot's estimation error too.
TOLERANCE = 0.03


def simulate(rng, effect, n_seeds, n_sims, seed_sd=0.3, inter_sd=4.0,
             diff_sd=6.0):
    """Per-image synthetic results of a paired two-arm experiment.

    Each experiment draws ``N_IMAGES`` new images from the population and
    ``n_seeds`` new trainings per arm. Per image, arm b scores y_i, arm a
    y_i + effect + d_i (d_i: what the method changes on that image, SD
    ``diff_sd``); each training adds a run-wide offset (SD ``seed_sd``)
    and a per-image seed x image term (SD ``inter_sd``). An arm's metric is
    the mean over images.

    Returns:
        (n_sims, n_seeds) metrics of a and b, and the per-image seed means
        of a - b (n_sims, N_IMAGES).
    """
    y = rng.beta(2, 3, size=(n_sims, 1, N_IMAGES)) * 100
    d = rng.normal(0, diff_sd, size=(n_sims, 1, N_IMAGES))

    def arm(base):
        offset = rng.normal(0, seed_sd, size=(n_sims, n_seeds, 1))
        inter = rng.normal(0, inter_sd, size=(n_sims, n_seeds, N_IMAGES))
        return base + offset + inter

    per_a, per_b = arm(y + effect + d), arm(y)
    return (per_a.mean(-1), per_b.mean(-1),
            per_a.mean(1) - per_b.mean(1))


def pilot_variance(rng) -> pw.Variance:
    """What a user measures in a pilot: 20 seeds of each arm on one image
    set; seed SD pooled over the arms, image SD by the paired bootstrap."""
    a, b, per_image = simulate(rng, 0.0, 20, 1)
    seed_sd = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    draws = rng.integers(0, N_IMAGES, size=(2000, N_IMAGES))
    boot = per_image[0][draws].mean(-1)
    return pw.Variance(float(seed_sd), float(boot.std(ddof=1)), N_IMAGES,
                       'simulated pilot')


@pytest.mark.parametrize('effect,n_seeds', [(0.6, 1), (0.6, 3), (0.4, 8),
                                            (1.0, 2)])
def test_power_matches_simulated_rejection_rate(effect, n_seeds):
    rng = np.random.default_rng(int(effect * 10) + n_seeds)
    v = pilot_variance(rng)
    planned = pw.power('greater', effect, v, n_seeds)
    a, b, _ = simulate(rng, effect, n_seeds, N_SIMS)
    delta = a.mean(1) - b.mean(1)
    # The verdict's rule: the 95% interval lies above 0.
    rejected = np.mean(delta - pw.Z_ALPHA * pw.effect_se(v, n_seeds) > 0)
    assert abs(rejected - planned) < TOLERANCE, (rejected, planned)
    # Not trivially 0 or 1: the settings span the interesting range.
    assert 0.1 < planned < 0.99


def test_mde_is_the_effect_with_80_percent_power():
    v = pw.prior('mask_AP')
    for n in (1, 3, 10):
        m = pw.mde('greater', v, n)
        assert pw.power('greater', m, v, n) == pytest.approx(0.8, abs=1e-6)
    m = pw.mde('small_difference', v, 3)
    assert pw.power('small_difference', 0.0, v, 3, margin=m) == \
        pytest.approx(0.8, abs=1e-6)


def test_seeds_needed_and_the_image_floor():
    v = pw.Variance(0.3, 0.2, 5000, 'prior')
    n = pw.seeds_needed('greater', 1.0, v)
    assert pw.power('greater', 1.0, v, n) >= 0.8 > \
        pw.power('greater', 1.0, v, n - 1)
    # The image term alone (2.8 x 0.2 = 0.56 AP) caps what seeds can buy.
    assert pw.seeds_needed('greater', 0.5, v) is None
    assert pw.prior('mask_APs').seed_sd == 2 * pw.prior('mask_AP').seed_sd
    # tau ~ 1 / sqrt(N): a quarter of the images doubles the image term.
    assert pw.prior('box_AP', 1250).image_sd == pytest.approx(0.4)


def test_claimed_effects_from_the_published_table():
    spec = load_weaknesses()
    pub = published_table()
    w4, src = pw.claimed_effect('W4', spec['W4'], pub)
    assert w4 == pytest.approx(1.0) and 'published.csv' in src
    # W9: every threshold must beat "off"; the nearest (0.4: +0.5) decides.
    assert pw.claimed_effect('W9', spec['W9'], pub)[0] == pytest.approx(0.5)
    assert pw.claimed_effect('W5', spec['W5'], pub)[0] is None
    assert pw.gap('small_gain', 0.4, 1.0) == pytest.approx(0.6)


class _Evals:
    """Stands in for RunEvals: each arm's runs are given by name."""

    def __init__(self, by_arm):
        self.by_arm = by_arm

    def for_runs(self, runs, iou_type):
        return self.by_arm.get((runs, iou_type), [])


def _image_eval(found: int):
    """Box evaluation of 4 images with one object each, ``found`` of them
    detected exactly."""
    coco = COCO()
    coco.dataset = dict(
        images=[dict(id=i, width=50, height=50) for i in range(1, 5)],
        annotations=[dict(id=i, image_id=i, category_id=1, iscrowd=0,
                          bbox=[5, 5, 20, 20], area=400.0)
                     for i in range(1, 5)],
        categories=[dict(id=1, name='a')])
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    dets = [dict(image_id=i, category_id=1, bbox=[5, 5, 20, 20], score=0.9)
            for i in range(1, found + 1)]
    return evaluate_images(coco, dets, 'bbox')


def test_paired_samples_is_the_image_sd_of_the_paired_difference():
    a, b = _image_eval(4), _image_eval(2)
    evals = _Evals({('a', 'bbox'): [a], ('b', 'bbox'): [b],
                    ('same', 'bbox'): [a]})
    sd, n_images = pw.paired_samples(evals, 'a', 'b', 'box_AP')
    assert n_images == 4 and sd > 0
    # Identical arms differ by nothing on every resample.
    assert pw.paired_samples(evals, 'a', 'same', 'box_AP') == (0.0, 4)
    # Not AP over a COCO range, or a side without detections: no estimate.
    assert pw.paired_samples(evals, 'a', 'b', 'latency_ms') is None
    assert pw.paired_samples(evals, 'a', 'b', 'mask_AP') is None

