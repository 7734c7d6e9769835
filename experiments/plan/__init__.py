"""``run_grid.py --plan``: for each verdict a grid feeds, its power, MDE and
the seeds it needs, beside the grid's cost (:mod:`~experiments.plan.grid_plan`;
options in :mod:`~experiments.plan.args`). The one package of experiments/
that imports analysis (power and the verdicts' definitions).

Also what every run needs before it starts: its initial weights, found in
the caches their loaders read (:mod:`~experiments.plan.weights_check`, which
the runner's planning refuses a grid by) and fetched on a node with internet
(:mod:`~experiments.plan.weights_fetch`, ``tools/fetch_weights.py``)."""
