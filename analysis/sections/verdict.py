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
        'Effect = metric(a) - metric(b) with its 95% interval (AP x100); '
        'the verdict follows the interval only (analysis/verdicts.py). '
        'Results read from: ' + ', '.join(sources)], [table])
