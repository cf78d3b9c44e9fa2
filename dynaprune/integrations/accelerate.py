"""Hugging Face Accelerate: a train loader whose :class:`~dynaprune.DynamicPruningSampler` is
sharded once.

``accelerator.prepare(loader)`` shards a DataLoader across processes by wrapping its batch
sampler in Accelerate's ``BatchSamplerShard`` (process ``r`` takes batches ``r, r + N, ...``).
The sampler already gives each rank its own shard of the epoch (``subset[rank::world_size]``),
so the wrapper would shard it a second time and each rank would train on 1/num_processes of
its share. :func:`prepare_loader` prepares the loader and makes the wrapper pass every batch
through, as ``transformers.Trainer`` does for its own rank-aware sampler (``num_processes=1,
process_index=0`` on the wrapper, in ``Trainer._get_dataloader``; here also
``even_batches=False``, so that an epoch's last batch is not filled up with repeated samples)::

    accelerator = Accelerator()
    sampler = DynamicPruningSampler(train_set, keep_ratio=0.5)
    model, opt = accelerator.prepare(model, opt)
    loader = prepare_loader(accelerator, DataLoader(train_set, batch_size=64, sampler=sampler))
    for epoch in range(epochs):
        loader.set_epoch(epoch)   # the prepared loader's: it sets the sampler's on each pass
        for x, y in loader:
            loss = sampler.update(F.cross_entropy(model(x), y, reduction="none"))
            accelerator.backward(loss); opt.step(); opt.zero_grad()

Accelerate's loader calls ``set_epoch`` with its own count of passes whenever it is iterated,
so set the epoch on the prepared loader (which forwards it to the sampler), not on the sampler
alone. ``accelerator.register_for_checkpointing(sampler)`` puts the sampler's state in
``accelerator.save_state()`` (every process calls ``state_dict()``, which merges the ranks'
statistics) and restores it in ``load_state()``.

Requires the ``transformers`` extra (``accelerate``).
"""

from __future__ import annotations

from typing import Any

from accelerate import Accelerator
from accelerate.data_loader import BatchSamplerShard, DataLoaderDispatcher
from torch.utils.data import DataLoader

from dynaprune.core.sampler import DynamicPruningSampler

__all__ = ["find_sampler", "prepare_loader", "unshard"]


def find_sampler(loader: Any) -> DynamicPruningSampler | None:
    """The :class:`~dynaprune.DynamicPruningSampler` of a DataLoader, prepared by Accelerate or
    not, or ``None``."""
    batch_sampler = getattr(loader, "batch_sampler", None)
    if isinstance(batch_sampler, BatchSamplerShard):
        batch_sampler = batch_sampler.batch_sampler
    for sampler in (getattr(batch_sampler, "sampler", None), getattr(loader, "sampler", None)):
        if isinstance(sampler, DynamicPruningSampler):
            return sampler
    return None


def unshard(loader: DataLoader[Any]) -> DataLoader[Any]:
    """Let a loader prepared by Accelerate pass its DynamicPruningSampler's batches through.

    Args:
        loader: a DataLoader returned by ``accelerator.prepare`` whose sampler is a
            :class:`~dynaprune.DynamicPruningSampler`; one that Accelerate did not shard (a
            single process) is returned as it is.

    Returns:
        ``loader``, whose ``BatchSamplerShard`` (if any) now yields every batch on every rank.

    Raises:
        ValueError: if the loader holds no DynamicPruningSampler, or Accelerate dispatches
            batches from the main process (``dispatch_batches=True``) or splits them
            (``split_batches=True``): with either, ranks would not train on their own shards.
    """
    if isinstance(loader, DataLoaderDispatcher):
        raise ValueError(
            "Accelerate dispatches this loader's batches from the main process "
            "(dispatch_batches=True), so ranks cannot train on the sampler's own shards: "
            "use DataLoaderConfiguration(dispatch_batches=False), the default for map-style data"
        )
    if find_sampler(loader) is None:
        raise ValueError(
            "found no DynamicPruningSampler in this loader: build it as DataLoader(train_set, "
            "batch_size=..., sampler=DynamicPruningSampler(train_set, keep_ratio=...))"
        )
    shard = getattr(loader, "batch_sampler", None)
    if isinstance(shard, BatchSamplerShard):
        if shard.split_batches:
            raise ValueError(
                "Accelerate splits each batch across processes (split_batches=True), but the "
                "sampler already gives each rank its own batches: use split_batches=False"
            )
        # The wrapper's own arguments: one process, as Trainer sets them for its rank-aware
        # sampler, so it skips no batches; and no even_batches, which would otherwise fill an
        # epoch's last, partial batch with samples from its start (trained twice).
        shard.num_processes = 1
        shard.process_index = 0
        shard.even_batches = False
    return loader


def prepare_loader(accelerator: Accelerator, loader: DataLoader[Any]) -> DataLoader[Any]:
    """``accelerator.prepare(loader)`` for a loader whose sampler is a DynamicPruningSampler:
    device placement as usual, sharding by the sampler alone (see :func:`unshard`)."""
    return unshard(accelerator.prepare(loader))
