"""Runs whose saved files do not read: a warning each, and one section.

A damaged detections file leaves its run out of the sections that need it;
the report is still written, and says which runs are missing from it.
"""
from typing import Dict

from analysis.report import Section
from experiments.store import run_label, warn


def note_damaged(damaged: Dict[str, str], row, message: str) -> None:
    """Record ``row``'s damage once, with a warning on stderr."""
    label = run_label(row.model, row.arm, row.dataset, row.seed)
    if label not in damaged:
        damaged[label] = message
        warn(f'run {label} left out of the report sections that read its '
             f'detections: {message}')


def damaged_runs_section(damaged: Dict[str, str]) -> Section:
    section = Section('Damaged runs', [
        'These finished runs are left out of every section that reads their '
        'saved detections (their rows in the comparison come from their '
        'own CocoMetric results). Re-evaluate them or delete the damaged '
        'file and run the grid again.'])
    section.text += [f'{label}: {message}'
                     for label, message in sorted(damaged.items())]
    return section
