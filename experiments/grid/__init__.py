"""What each run of a grid is, before anything runs.

- :mod:`~experiments.grid.spec`: the grid file (models x arms x datasets x
  seeds, overrides, batch keys) and its cells;
- :mod:`~experiments.grid.run_config`: a cell's config resolved (dataset,
  seed, overrides, recipe) and its run id;
- :mod:`~experiments.grid.batch_recipe`: the total batch placed on processes,
  the config's ``paper_recipe`` and the LR-scaling rule;
- :mod:`~experiments.grid.config_check`,
  :mod:`~experiments.grid.schedule_check`: planning checks of registry types,
  arguments and schedule values;
- :mod:`~experiments.grid.table`: which run dirs the grid's table lists.
"""
