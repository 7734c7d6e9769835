"""The results row's ``resumed_from`` and ``resume_exact`` of a run."""
from typing import List, Optional


def resume_columns(run_dir: str, tested: Optional[List[str]] = None) -> dict:
    """``resumed_from`` (``iter 2; iter 4``) and ``resume_exact`` of a run
    that resumed; empty when it never did.

    ``yes`` only when ``RandomStateHook``'s report says every rank resumed
    exactly and ``tested`` -- why the ranks' tested model may not be the
    saved one (``SameModelTestHook.problems()``; None: not checked) -- is
    empty: a row evaluated from per-rank state is not the uninterrupted
    run's (issue 39).
    """
    from mmdet_plugins.engine.random_state_hook import read_resume_report
    try:
        report = read_resume_report(run_dir)
    except (OSError, ValueError):
        report = None
    if not report or not report.get('resumes'):
        return dict(resumed_from='', resume_exact='')
    resumes = report['resumes']
    reasons = sorted({r for x in resumes for r in x.get('reasons') or []})
    reasons += ['evaluation not checked'] if tested is None else tested
    return dict(
        resumed_from='; '.join(f'{x.get("kind", "iter")} {x.get("step")}'
                               for x in resumes),
        resume_exact='no: ' + '; '.join(reasons) if reasons else 'yes')
