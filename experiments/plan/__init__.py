"""``run_grid.py --plan``: for each verdict a grid feeds, its power, MDE and
the seeds it needs, beside the grid's cost (:mod:`~experiments.plan.grid_plan`;
options in :mod:`~experiments.plan.args`). The one package of experiments/
that imports analysis (power and the verdicts' definitions)."""
