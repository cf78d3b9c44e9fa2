"""Dataset condensation with differentiable Siamese augmentation (DSA; Zhao and Bilen, ICML 2021).

DC's gradient matching (:mod:`dynaprune.condense.dc`) with one DSA transformation
(:mod:`dynaprune.condense.augment`, strategy ``color_crop_cutout_flip_scale_rotate``) drawn per
class and outer loop and applied to the real and the synthetic batch alike; the inner loop
trains on per-image augmented synthetic batches. Follows VICO-UoE/DatasetCondensation
``main.py`` with ``--method DSA --init real`` (the README's CIFAR-10 command).
"""

from __future__ import annotations

from torch import Tensor

from dynaprune.condense._common import Callback, CondenseResult
from dynaprune.condense.dc import gradient_matching

__all__ = ["dsa"]


def dsa(
    images: Tensor,
    labels: Tensor,
    ipc: int,
    *,
    iterations: int = 1000,
    outer_loops: int | None = None,
    inner_loops: int | None = None,
    lr_images: float = 0.1,
    lr_net: float = 0.01,
    batch_real: int = 256,
    batch_train: int = 256,
    init: str = "real",
    seed: int = 0,
    num_classes: int | None = None,
    callback: Callback | None = None,
) -> CondenseResult:
    """Condenses ``images`` into ``ipc`` images per class by gradient matching under DSA.

    The arguments are :func:`~dynaprune.condense.dc`'s (published defaults: 1000 iterations,
    loops by ``ipc``, image learning rate 0.1, real batch 256), except ``init="real"``.

    Example:
        >>> import torch
        >>> x, y = torch.randn(20, 3, 8, 8), torch.arange(2).repeat(10)
        >>> dsa(x, y, ipc=1, iterations=2, batch_real=4).images.shape
        torch.Size([2, 3, 8, 8])
    """
    return gradient_matching(
        images,
        labels,
        ipc,
        iterations=iterations,
        outer_loops=outer_loops,
        inner_loops=inner_loops,
        lr_images=lr_images,
        lr_net=lr_net,
        batch_real=batch_real,
        batch_train=batch_train,
        init=init,
        augment=True,
        seed=seed,
        num_classes=num_classes,
        callback=callback,
    )
