"""Which samples a pruned epoch holds, for updates that name their samples by index.

A sample outside the epoch is a caller's bug (a wrong index tensor in a plain loop). On the CPU
it raises at once; on an accelerator it is counted on the device, not recorded, and raised at
the next epoch boundary: reading it per step would be a host sync per step.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["EpochMembers"]


class EpochMembers:
    """The samples of epoch ``epoch``'s ``order``, out of ``num_samples``, and the count of
    indexed entries that named others."""

    def __init__(self, epoch: int, order: Tensor, num_samples: int) -> None:
        self.epoch = epoch
        self.mask = torch.zeros(num_samples, dtype=torch.bool, device=order.device)
        self.mask[order] = True
        self.strangers = torch.zeros((), dtype=torch.int64, device=order.device)

    def inside(self, indices: Tensor) -> Tensor:
        """Whether each of ``indices`` is in the epoch; a stranger raises at once on the CPU and
        is counted elsewhere."""
        inside = self.mask[indices]
        if inside.device.type == "cpu":
            if not bool(inside.all()):
                raise ValueError(_stranger_message(self.epoch, int(indices[~inside][0])))
        else:
            self.strangers += inside.numel() - inside.sum()
        return inside

    def check(self) -> None:
        """Raise if strangers were counted (a host read, once per epoch).

        Raises:
            ValueError: naming the count; it keeps being raised, like non-finite losses in
                ``nonfinite="raise"`` mode.
        """
        count = int(self.strangers.item())
        if count:
            raise ValueError(_stranger_message(self.epoch, None, count))

    def to(self, device: torch.device) -> None:
        self.mask, self.strangers = self.mask.to(device), self.strangers.to(device)


def _stranger_message(epoch: int, example: int | None, count: int = 1) -> str:
    what = f"sample {example}" if example is not None else f"{count} samples"
    return (
        f"update(indices=...) named {what} not in epoch {epoch}'s subset, whose losses were not "
        "recorded; pass the indices of the samples this sampler yielded for the epoch (as the "
        "DataLoader batches them), or no indices to match losses by position"
    )
