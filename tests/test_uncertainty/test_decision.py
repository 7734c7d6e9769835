"""The verdict table of uncertainty/decision.py, row by row."""
import math

import pytest

from uncertainty.decision import claim_bounds, decide, gap


@pytest.mark.parametrize('kind,lo,hi,margin,expected', [
    ('greater', 0.1, 0.3, 0, 'supported'),
    ('greater', -0.3, -0.1, 0, 'contradicted'),
    ('greater', -0.1, 0.3, 0, 'inconclusive'),
    ('less', -0.3, -0.1, 0, 'supported'),
    ('less', 0.1, 0.3, 0, 'contradicted'),
    ('small_difference', -0.5, 0.5, 1, 'supported'),
    ('small_difference', 1.1, 1.5, 1, 'contradicted'),
    ('small_difference', -1.5, -1.1, 1, 'contradicted'),
    ('small_difference', 0.5, 1.5, 1, 'inconclusive'),
    ('small_gain', 0.1, 0.8, 1, 'supported'),
    ('small_gain', 1.2, 1.8, 1, 'contradicted'),
    ('small_gain', 0.5, 1.5, 1, 'inconclusive'),
    ('greater', math.nan, 0.3, 0, 'inconclusive'),
])
def test_decide(kind, lo, hi, margin, expected):
    assert decide(kind, lo, hi, margin) == expected


def test_bounds_and_gap():
    assert claim_bounds('small_difference', 1.0) == (-1.0, 1.0)
    assert gap('small_gain', 0.4, 1.0) == pytest.approx(0.6)
    assert gap('less', -0.5) == 0.5
    with pytest.raises(ValueError, match='unknown kind'):
        decide('bigger', 0, 1)
