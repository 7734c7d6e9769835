"""The variance model of a verdict's effect, and what it decides.

One model serves the planner (``run_grid.py --plan``), the report's power
section and every verdict interval:

- :mod:`uncertainty.noise`: the components of one comparison's noise (image
  sampling, run-wide seed offset, seed x image interaction) and the COCO
  prior with its sources;
- :mod:`uncertainty.difference`: an effect's interval from what the runs
  show (per-seed values and image resamples), with the prior only for what
  they cannot show;
- :mod:`uncertainty.decision`: supported / contradicted / inconclusive from
  an interval;
- :mod:`uncertainty.power`: power, minimum detectable effect and seeds
  needed of that same interval rule.

This package imports neither ``analysis`` nor ``experiments``: both import
it.
"""
