"""Supported, contradicted or inconclusive, from an interval only.

============== ===================== ======================= ==============
kind           supported             contradicted            else
============== ===================== ======================= ==============
greater        lo > 0                hi < 0                  inconclusive
less           hi < 0                lo > 0                  inconclusive
small_diff.    -m < lo and hi < m    lo > m or hi < -m       inconclusive
small_gain     hi < m                lo > m                  inconclusive
============== ===================== ======================= ==============

"supported" is a one-sided test at 2.5% for greater/less/small_gain, and
two one-sided tests (TOST) at 2.5% each for small_difference.
"""
import math
from typing import Tuple

KINDS = ('greater', 'less', 'small_difference', 'small_gain')


def claim_bounds(kind: str, margin: float = 0.0) -> Tuple[float, float]:
    """``(L, U)``: the claim is supported when ``L < lo`` and ``hi < U``."""
    if kind == 'greater':
        return 0.0, math.inf
    if kind == 'less':
        return -math.inf, 0.0
    if kind == 'small_difference':
        return -margin, margin
    if kind == 'small_gain':
        return -math.inf, margin
    raise ValueError(f'unknown kind {kind!r}; one of {KINDS}')


def decide(kind: str, lo: float, hi: float, margin: float = 0.0) -> str:
    """``supported``, ``contradicted`` or ``inconclusive``."""
    low, up = claim_bounds(kind, margin)
    if lo != lo or hi != hi:
        return 'inconclusive'
    if low < lo and hi < up:
        return 'supported'
    if kind == 'greater':
        against = hi < 0
    elif kind == 'less':
        against = lo > 0
    elif kind == 'small_difference':
        against = lo > margin or hi < -margin
    else:
        against = lo > margin
    return 'contradicted' if against else 'inconclusive'


def gap(kind: str, effect: float, margin: float = 0.0) -> float:
    """Distance of ``effect`` from the verdict's boundary, on the claimed
    side (negative: the effect itself lies on the other side)."""
    if kind == 'greater':
        return effect
    if kind == 'less':
        return -effect
    if kind == 'small_gain':
        return margin - effect
    if kind == 'small_difference':
        return margin - abs(effect)
    raise ValueError(f'unknown kind {kind!r}; one of {KINDS}')
