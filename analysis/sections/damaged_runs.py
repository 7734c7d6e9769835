"""Runs whose saved files do not read: one section naming them.

A damaged detections file leaves its run out of the sections that need it
(:func:`analysis.coco_eval.run_eval.note_damaged` records it, with a
warning); the report is still written, and says which runs are missing
from it.
"""
from typing import Dict

from analysis.report import Section


def damaged_runs_section(damaged: Dict[str, str]) -> Section:
    section = Section('Damaged runs', [
        'These finished runs are left out of every section that reads their '
        'saved detections (their rows in the comparison come from their '
        'own CocoMetric results). Re-evaluate them or delete the damaged '
        'file and run the grid again.'])
    section.text += [f'{label}: {message}'
                     for label, message in sorted(damaged.items())]
    return section
