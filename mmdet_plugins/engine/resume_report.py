"""The record of a resume's exactness: every rank's verdict gathered by
:class:`~mmdet_plugins.engine.random_state_hook.RandomStateHook`, appended
to ``<work_dir>/resume_exactness.json`` and logged once (a warning when
inexact)."""
import json
import os
import os.path as osp
import time
from typing import List, Optional

REPORT_FILE = 'resume_exactness.json'


def read_resume_report(work_dir: str) -> Optional[dict]:
    """``resume_exactness.json`` of a run dir, None when it never resumed."""
    path = osp.join(work_dir, REPORT_FILE)
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def record_resume(runner, resumed: dict, verdicts: List[dict]) -> None:
    """On rank 0: append one resume (``resumed``: kind, step, iter, epoch)
    with every rank's ``verdicts`` (rank, reasons, data_checked) to the
    report and log it."""
    all_reasons = [f'rank {v["rank"]}: {r}' if len(verdicts) > 1 else r
                   for v in verdicts for r in v['reasons']]
    entry = dict(kind=resumed['kind'], step=resumed['step'],
                 iter=resumed['iter'], epoch=resumed['epoch'],
                 exact=not all_reasons, reasons=all_reasons,
                 data_rng_checked=all(v['data_checked'] for v in verdicts),
                 processes=len(verdicts),
                 time=time.strftime('%Y-%m-%dT%H:%M:%S'))
    report = read_resume_report(runner.work_dir) or dict(resumes=[])
    report['resumes'].append(entry)
    report['exact'] = all(e['exact'] for e in report['resumes'])
    path = osp.join(runner.work_dir, REPORT_FILE)
    with open(f'{path}.tmp', 'w') as f:
        json.dump(report, f, indent=1)
    os.replace(f'{path}.tmp', path)
    where = f'{resumed["kind"]} {resumed["step"]}'
    if all_reasons:
        runner.logger.warning(
            f'Resumed from {where} INEXACTLY: the rest of training will '
            'not be the uninterrupted run\'s: ' + '; '.join(all_reasons)
            + f' (recorded in {REPORT_FILE})')
    else:
        runner.logger.info(f'Resumed from {where} with every rank\'s '
                           'random state: the run continues exactly')
