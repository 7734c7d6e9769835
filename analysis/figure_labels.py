"""Figure text that reads: point labels that cover neither one another nor
a point (:func:`place_labels`), and a log axis labelled with plain numbers
(:func:`plain_log_ticks`).

A simple rule in the spirit of adjustText: each label tries positions
around its point, nearest first (right, left, above, below, then the
diagonals, then the same farther out with a thin leader line), and takes the
first whose box overlaps no label already placed, no point and nothing
outside the axes; when none is free, the position that overlaps least.
Positions are in screen points from the point, so the figure must be laid
out (its axes placed, their limits set) before the labels are placed, and
the labels are kept out of any later layout (``set_in_layout(False)``).
"""
import math
from typing import List, Sequence

from matplotlib.ticker import LogFormatterSciNotation
from matplotlib.transforms import Bbox

# Distances (points) from the point tried in turn; from the third on, a
# leader line joins label and point.
DISTANCES = (4.0, 9.0, 16.0, 26.0)
LEADER_FROM = 16.0
# Directions, nearest-looking first: right, left, up, down, diagonals.
ANGLES = (0, 180, 90, 270, 45, 135, 315, 225)
MARKER_HALF_PX = 4.0  # half the side of the box a point's marker takes


def _alignment(angle: float):
    """Text alignment that puts the label on the far side of its anchor."""
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    ha = 'left' if c > 0.3 else 'right' if c < -0.3 else 'center'
    va = 'bottom' if s > 0.3 else 'top' if s < -0.3 else 'center'
    return c, s, ha, va


def _overlap(a: Bbox, b: Bbox) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def _outside(box: Bbox, frame: Bbox) -> float:
    return box.width * box.height - _overlap(box, frame)


def place_labels(ax, xs: Sequence[float], ys: Sequence[float],
                 labels: Sequence[str], fontsize: float = 8,
                 color: str = 'black') -> List:
    """Annotate each point with its label where it covers nothing else.

    Args:
        ax: The axes, laid out, with its final limits.
        xs: The points' x in data coordinates.
        ys: Their y.
        labels: One short label per point.
        fontsize: The labels' size in points.
        color: The labels' colour.

    Returns:
        The annotations, in the order of the points.
    """
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    pixels = [ax.transData.transform((x, y)) for x, y in zip(xs, ys)]
    h = MARKER_HALF_PX * fig.dpi / 72
    taken = [Bbox.from_extents(px - h, py - h, px + h, py + h)
             for px, py in pixels]
    out = []
    for x, y, label in zip(xs, ys, labels):
        best = None
        for distance in DISTANCES:
            for angle in ANGLES:
                c, s, ha, va = _alignment(angle)
                text = ax.annotate(label, (x, y), fontsize=fontsize,
                                   xytext=(distance * c, distance * s),
                                   textcoords='offset points', ha=ha,
                                   va=va, color=color)
                box = text.get_window_extent(renderer).expanded(1.1, 1.1)
                cost = (sum(_overlap(box, t) for t in taken)
                        + 10 * _outside(box, frame))
                if best is None or cost < best[0]:
                    if best is not None:
                        best[1].remove()
                    best = (cost, text, box, distance)
                else:
                    text.remove()
                if cost == 0:
                    break
            if best[0] == 0:
                break
        _, text, box, distance = best
        if distance >= LEADER_FROM:
            xytext, ha, va = text.xyann, text.get_ha(), text.get_va()
            text.remove()
            text = ax.annotate(label, (x, y), fontsize=fontsize,
                               xytext=xytext, textcoords='offset points',
                               ha=ha, va=va, color=color,
                               arrowprops=dict(arrowstyle='-', lw=0.5,
                                               color='0.5',
                                               shrinkA=0, shrinkB=2))
        text.set_in_layout(False)
        taken.append(box)
        out.append(text)
    return out


class PlainLogFormatter(LogFormatterSciNotation):
    """Log-axis tick labels as plain numbers (``3``, ``0.9``, ``1e-05``)
    on the ticks matplotlib's own log formatter labels, instead of its
    ``3x10^0``."""

    def __call__(self, x, pos=None):
        return f'{x:g}' if super().__call__(x, pos) else ''


def plain_log_ticks(axis) -> None:
    """Label a log-scaled axis with plain numbers, major and minor ticks
    alike (matplotlib labels minor ticks when the axis spans less than a
    decade or two).

    Args:
        axis: The axis, e.g. ``ax.yaxis`` after ``ax.set_yscale('log')``.
    """
    axis.set_major_formatter(PlainLogFormatter())
    axis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False))
