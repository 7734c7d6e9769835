"""The report's sections after the comparison, in the order it shows them.

This is the one list of them: a new section is added here, at its place.
The report's frame around them is fixed (:func:`analysis.report.write_report`):
provenance, the comparison and AP by size
(:mod:`analysis.sections.comparison`) first, failed runs last.
Each finished run is re-evaluated per image once
(:class:`~analysis.coco_eval.run_eval.RunEvals`), and every section that
reads its detections shares that evaluation; a run whose detections do not
read is left out of them and named in a last section.
"""
import time
from typing import Callable, Dict, List, Optional, Tuple

import pandas as pd

from analysis.coco_eval.run_eval import RunEvals
from analysis.report import Section
from analysis.sections.cost import (arm_cost_rows, attention_section,
                                    speed_accuracy_section)
from analysis.sections.damaged_runs import damaged_runs_section
from analysis.sections.error_breakdown import error_breakdown_section
from analysis.sections.grid_power import RunRates, grid_power_section
from analysis.sections.paper_tables import (paper_tables_section,
                                            threshold_sweep_section)
from analysis.sections.per_category import per_category_section
from analysis.sections.per_image import (bootstrap_section,
                                         fine_bins_section, iou_sweep_section)
from analysis.sections.qualitative import qualitative_section
from analysis.sections.training_curves import (beta_section,
                                               training_curves_section)
from analysis.sections.verdict import verdict_section
from analysis.evidence import make_evidence


def report_sections(df: pd.DataFrame, all_results: pd.DataFrame,
                    out_dir: str, n_resamples: int, sources: List[str],
                    rates: Optional[RunRates] = None,
                    timings: Optional[Dict[str, float]] = None
                    ) -> List[Section]:
    """Every section after the comparison, in the report's order.

    Args:
        df: This grid's results.
        all_results: This grid's and every other declared grid's results
            (the verdicts, paper tables, sweeps and cost read them).
        out_dir: Where the figures go.
        n_resamples: Image-bootstrap resamples.
        sources: The results tables read, named in the verdicts' text.
        rates: Each finished run's planned rate
            (:data:`~analysis.sections.grid_power.RunRates`); None: no run
            has one.
        timings: When given, filled with the seconds each step took, by
            name (``tools/benchmark_report.py``); the per-image evaluation
            of every run is a step of its own, before the sections that
            read it.
    """
    evals = RunEvals()
    costs = arm_cost_rows(all_results, n_resamples)
    evidence = make_evidence(evals, n_resamples)
    steps: List[Tuple[str, Callable[[], Optional[Section]]]] = [
        ('error_breakdown',
         lambda: error_breakdown_section(df, out_dir, evals.damaged)),
        ('per-image evaluation', lambda: evals.evaluate_all(df)),
        ('per_category', lambda: per_category_section(df, evals,
                                                      n_resamples)),
        ('qualitative', lambda: qualitative_section(df, evals, out_dir)),
        ('training_curves', lambda: training_curves_section(df, out_dir)),
        ('fine_bins', lambda: fine_bins_section(df, evals, out_dir)),
        ('iou_sweep', lambda: iou_sweep_section(df, evals, out_dir)),
        ('bootstrap', lambda: bootstrap_section(df, evals, n_resamples)),
        ('verdict', lambda: verdict_section(all_results, evidence, sources)),
        ('paper_tables', lambda: paper_tables_section(all_results)),
        ('threshold_sweep',
         lambda: threshold_sweep_section(all_results, out_dir)),
        ('attention', lambda: attention_section(costs)),
        ('speed_accuracy', lambda: speed_accuracy_section(costs, out_dir)),
        ('beta', lambda: beta_section(df, out_dir)),
        ('grid_power', lambda: grid_power_section(all_results, evals,
                                                  evidence, rates or {})),
    ]
    sections = []
    for name, build in steps:
        start = time.perf_counter()
        section = build()
        if timings is not None:
            timings[name] = time.perf_counter() - start
        if section is not None:
            sections.append(section)
    if evals.damaged:
        sections.append(damaged_runs_section(evals.damaged))
    return sections
