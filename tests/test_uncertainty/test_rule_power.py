"""Power, MDE and seeds needed of the verdict rule."""
import math

import pytest
from scipy import stats

from uncertainty.noise import Noise, prior
from uncertainty.power import mde, power, seeds_needed


def test_one_seed_power_is_the_known_variance_formula():
    n = Noise(0.2, 0.3, 0.0, 5000, 'x')
    se = math.sqrt(0.04 + 2 * 0.09)
    assert power('greater', 0.5, n, 1) == pytest.approx(
        stats.norm.cdf(0.5 / se - 1.959964), abs=1e-6)
    assert power('greater', 0.0, n, 1) == pytest.approx(0.025, abs=1e-6)


def test_estimated_seed_noise_costs_power():
    # Two seeds per arm estimate the seed term from 2 dof: the t quantile
    # is wide, and power is below the known-variance formula's.
    n = prior('mask_AP')
    se = math.sqrt(n.variance(2, 2))
    known = stats.norm.cdf(1.0 / se - 1.959964)
    assert power('greater', 1.0, n, 2) < known - 0.1


def test_mde_is_the_effect_with_80_percent_power():
    n = prior('mask_AP')
    for k in (1, 3, 10):
        m = mde('greater', n, k)
        assert power('greater', m, n, k) == pytest.approx(0.8, abs=1e-5)
        assert mde('less', n, k) == pytest.approx(m)
    m = mde('small_difference', n, 3)
    assert power('small_difference', 0.0, n, 3, margin=m) == \
        pytest.approx(0.8, abs=1e-5)


def test_seeds_needed_and_the_image_floor():
    n = Noise(0.2, 0.3, 0.0, 5000, 'prior')
    k = seeds_needed('greater', 1.0, n)
    assert power('greater', 1.0, n, k) >= 0.8 > power('greater', 1.0, n,
                                                       k - 1)
    # The image term alone (2.8 x 0.2 = 0.56 AP) caps what seeds can buy.
    assert seeds_needed('greater', 0.5, n) is None
