"""The verdicts on the reviewed weaknesses W1-W11, as a report section
(:mod:`analysis.verdicts` decides them)."""
from typing import List, Optional

import pandas as pd

from analysis.report import Section
from analysis.verdicts import Evidence, verdict_table


def verdict_section(all_results: pd.DataFrame, evidence: Optional[Evidence],
                    sources: List[str]) -> Section:
    """Args:
        all_results: Results of every grid the report reads.
        evidence: Paired bootstrap evidence
            (:func:`analysis.verdicts.make_evidence`).
        sources: The results tables read, named in the text.
    """
    table = verdict_table(all_results, evidence)
    return Section('Verdicts on the reviewed weaknesses (W1-W11)', [
        'Effect = metric(a) - metric(b) with its 95% interval (AP '
        'points); the verdict follows the interval only '
        '(analysis/verdicts.py). The interval covers image sampling (the '
        'paired image bootstrap of saved detections, or the prior without '
        'them), the run-wide seed offset and the seed x image part '
        '(uncertainty/difference.py): seed_sd is one run\'s seed SD and '
        'where it came from (these runs\' own seeds when an arm has two or '
        'more; the COCO prior with one, named in the sentence), image_sd '
        'the image-sampling SD of the effect, mde the smallest distance '
        'from the verdict\'s boundary these runs resolve at 95% confidence'
        ' and 80% power -- a claim nearer than that stays inconclusive '
        'however it really is. tools/calibrate_verdicts.py shows by '
        'simulation that "supported" comes no more often than the 2.5% '
        'level allows. Results read from: ' + ', '.join(sources)], [table])
