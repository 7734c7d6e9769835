"""The verdicts on the reviewed weaknesses W1-W11, as a report section
(:mod:`analysis.verdicts` decides them)."""
import os
import os.path as osp
from typing import List, Optional

import pandas as pd

from analysis.report import Section
from analysis.verdicts import Evidence, verdict_table
from experiments.store import PROJECT_ROOT


def shown_path(path: str, base: str) -> str:
    """``path`` as the report prints it: never absolute.

    Args:
        path: A file the report read.
        base: The folder a path outside the project is named from (the
            report's own results table's folder).

    Returns:
        The path relative to the project root when it is inside the
        project; else relative to ``base`` when that climbs at most one
        folder (a sibling work dir), saying so; else ``…/<folder>/<file>``.
    """
    path = osp.abspath(path)
    inside = osp.relpath(path, PROJECT_ROOT)
    if not inside.startswith(os.pardir):
        return inside
    near = osp.relpath(path, osp.abspath(base))
    if not near.startswith(osp.join(os.pardir, os.pardir)):
        return f'{near} (from this report\'s results folder)'
    return osp.join('…', osp.basename(osp.dirname(path)),
                    osp.basename(path))


def verdict_section(all_results: pd.DataFrame, evidence: Optional[Evidence],
                    sources: List[str]) -> Section:
    """Args:
        all_results: Results of every grid the report reads.
        evidence: Paired bootstrap evidence
            (:func:`analysis.verdicts.make_evidence`).
        sources: The results tables read, this report's own first; named
            in the text relative to the project root (:func:`shown_path`).
    """
    table = verdict_table(all_results, evidence)
    base = osp.dirname(osp.abspath(sources[0])) if sources else PROJECT_ROOT
    section = Section('Verdicts on the reviewed weaknesses (W1-W11)', [
        'Effect = metric(a) - metric(b) with its 95% interval (AP '
        'points); the verdict follows the interval only '
        '(analysis/verdicts.py). The interval covers image sampling (the '
        'paired image bootstrap of saved detections, or the prior without '
        'them), the run-wide seed offset and the seed x image part '
        '(uncertainty/difference.py). tools/calibrate_verdicts.py shows by '
        'simulation that "supported" comes no more often than the 2.5% '
        'level allows. Results read from (relative to the project root): '
        + ', '.join(shown_path(s, base) for s in sources) + '.'])
    section.add_table(table, (
        'One row per reviewed weakness. seed_sd: one run\'s seed SD and '
        'where it came from (these runs\' own seeds when an arm has two or '
        'more; the COCO prior with one, named in the sentence); image_sd: '
        'the image-sampling SD of the effect; mde: the smallest distance '
        'from the verdict\'s boundary these runs resolve at 95% confidence '
        'and 80% power -- a claim nearer than that stays inconclusive '
        'however it really is.'))
    return section
