"""Running a grid's runs on this machine.

- :mod:`~experiments.runner.grid_runs`: cells to planned runs (configs
  resolved, problems collected), the dry-run listing;
- :mod:`~experiments.runner.slots`, :mod:`~experiments.runner.scheduler`:
  GPU / CPU slots and the scheduler that packs runs onto them;
- :mod:`~experiments.runner.launch`: one attempt at a run (lock, re-check,
  child process, outcome); :mod:`~experiments.runner.lock`: the run's flock;
- :mod:`~experiments.runner.rank_launch`: k processes of one run under
  ``torchrun``; :mod:`~experiments.runner.train_run`: the training child;
- :mod:`~experiments.runner.progress`,
  :mod:`~experiments.runner.grid_progress`: an attempt's records and the
  grid's live line.
"""
