"""``run_grid.py --executor slurm``: one submitit job per run
(:mod:`~experiments.slurm.executor`), what a job runs and how it requeues
on a signal (:mod:`~experiments.slurm.job`), job states from ``squeue``
(:mod:`~experiments.slurm.queue`)."""
