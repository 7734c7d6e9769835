"""Distributed data parallel on GPUs and on CPU processes (gloo)."""
from typing import List, Optional

import torch
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class AnyDeviceDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` that also wraps a model on the CPU.

    mmengine's runner always passes ``device_ids=[LOCAL_RANK]``, which
    PyTorch refuses for a module whose parameters live on the CPU. Here the
    ids are dropped for a CPU module (one process per CPU "slot", gloo
    backend), and kept for a CUDA one. Gradients are averaged over the
    processes either way (PyTorch's all-reduce divides by the world size).

    Args:
        module: The model.
        device_ids: As PyTorch's; ignored for a CPU module.
        **kwargs: Passed to ``MMDistributedDataParallel`` (e.g.
            ``broadcast_buffers=False``, ``find_unused_parameters``).
    """

    def __init__(self, module: torch.nn.Module,
                 device_ids: Optional[List[int]] = None, **kwargs) -> None:
        on_cpu = all(p.device.type == 'cpu' for p in module.parameters())
        super().__init__(module=module,
                         device_ids=None if on_cpu else device_ids, **kwargs)
