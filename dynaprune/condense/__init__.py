"""Dataset condensation: synthesise a few images per class instead of choosing real ones.

One function per method, each returning a :class:`CondenseResult` (a ``TensorDataset`` of
synthetic images and labels, and the seconds it took), seeded by a local generator:

* :func:`dc` — gradient matching (Zhao, Mopuri and Bilen, ICLR 2021);
* :func:`dsa` — gradient matching under differentiable Siamese augmentation (Zhao and
  Bilen, ICML 2021), whose augmentation is :mod:`dynaprune.condense.augment`;
* :func:`dm` — distribution matching (Zhao and Bilen, WACV 2023);
* :func:`idm` — improved distribution matching (Zhao et al., CVPR 2023);
* :func:`cafe` — aligning features (Wang et al., CVPR 2022);

with the papers' :class:`ConvNet` and their evaluation protocol, :func:`train_convnet`.
Method cards: ``docs/condensation.md``.
"""

from dynaprune.condense._common import CondenseResult
from dynaprune.condense.augment import (
    DSA_STRATEGY,
    Augmentation,
    DSAParams,
    draw_augmentation,
    dsa_augment,
)
from dynaprune.condense.cafe import cafe, cafe_loss
from dynaprune.condense.convnet import ConvNet
from dynaprune.condense.dc import dc, gradient_distance, published_loops
from dynaprune.condense.dm import dm, dm_loss
from dynaprune.condense.dsa import dsa
from dynaprune.condense.evaluate import accuracy, train_convnet
from dynaprune.condense.idm import expand_partitions, idm, pack_partitions

__all__ = [
    "DSA_STRATEGY",
    "Augmentation",
    "CondenseResult",
    "ConvNet",
    "DSAParams",
    "accuracy",
    "cafe",
    "cafe_loss",
    "dc",
    "dm",
    "dm_loss",
    "draw_augmentation",
    "dsa",
    "dsa_augment",
    "expand_partitions",
    "gradient_distance",
    "idm",
    "pack_partitions",
    "published_loops",
    "train_convnet",
]
