"""Where runs go on this machine: GPU ids or CPU slots."""
import os
from typing import List, Optional

from experiments.grid.spec import GridSpecError
from experiments.runner.launch import CPU_SLOT_PREFIX


def visible_gpus() -> List[str]:
    """GPU ids this process may use, as CUDA_VISIBLE_DEVICES spells them."""
    visible = os.environ.get('CUDA_VISIBLE_DEVICES')
    if visible is not None:
        return [g for g in visible.split(',') if g.strip()]
    import torch
    return [str(i) for i in range(torch.cuda.device_count())]


def resolve_slots(gpus: Optional[str], slots: Optional[int]) -> List[str]:
    """Slot ids: GPU ids, or ``cpu0``, ``cpu1``... for CPU slots."""
    if slots is not None and gpus is not None:
        raise GridSpecError('give --gpus or --slots, not both')
    if slots is not None:
        if slots < 1:
            raise GridSpecError(f'--slots must be at least 1, got {slots}')
        return [f'{CPU_SLOT_PREFIX}{i}' for i in range(slots)]
    if gpus is None or gpus == 'all':
        found = visible_gpus()
        if not found and gpus == 'all':
            raise GridSpecError('--gpus all: no GPU is visible')
        return found or [f'{CPU_SLOT_PREFIX}0']
    ids = [g.strip() for g in gpus.split(',') if g.strip()]
    if not ids or len(set(ids)) != len(ids):
        raise GridSpecError(f'--gpus {gpus!r}: give distinct GPU ids, '
                            f'e.g. 0,1,2,3')
    return ids
