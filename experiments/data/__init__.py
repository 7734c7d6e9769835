"""Datasets of a grid.

- :mod:`~experiments.data.prepare`: a grid's dataset entry checked (or the
  built-in one generated) into paths and counts;
- :mod:`~experiments.data.coco_check`: a COCO file's errors, named by field;
- :mod:`~experiments.data.coco_stats`: counts per category and size range;
- :mod:`~experiments.data.synthetic_coco`, :mod:`~experiments.data.shapes`:
  the built-in synthetic dataset and its drawing.
"""
