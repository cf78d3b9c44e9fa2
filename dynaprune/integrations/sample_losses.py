"""Per-sample losses from a model's logits and labels, for frameworks whose models return one
mean loss (Hugging Face ``transformers``).

A framework's loss is a mean over items: samples for classification, target tokens for language
modelling. :func:`sample_losses` returns each sample's *sum* over its items and its *count* of
items, so that both the sampler's per-sample loss (``sums / counts``, the sample's mean token
loss) and the framework's batch loss (``sums.sum() / items``, with ``items`` counted over the
whole accumulated batch) come from one computation. Labels equal to ``ignore_index`` (``-100``,
as in ``transformers``) are no items. Imports torch only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["SAMPLE_LOSS_KINDS", "sample_losses"]

#: ``"sequence"``: one label per sample (sequence classification or regression);
#: ``"causal_lm"``: next-token labels, shifted by one as causal language models do;
#: ``"token"``: one label per position, unshifted (token classification, encoder-decoder models).
SAMPLE_LOSS_KINDS = ("sequence", "causal_lm", "token")

IGNORE_INDEX = -100


def sample_losses(
    logits: Tensor,
    labels: Tensor,
    kind: str,
    *,
    problem_type: str | None = None,
    label_smoothing: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """Each sample's summed loss over its items and its number of items.

    Args:
        logits: the model's logits, ``(B, C)`` for ``"sequence"``, ``(B, T, V)`` otherwise.
        labels: ``(B,)`` class indices or ``(B, C)`` targets for ``"sequence"``; ``(B, T)`` token
            labels otherwise, ``-100`` where a position has no target.
        kind: one of :data:`SAMPLE_LOSS_KINDS`.
        problem_type: for ``"sequence"``, the model's ``config.problem_type``
            (``"single_label_classification"``, ``"multi_label_classification"`` or
            ``"regression"``); ``None`` decides as ``transformers`` does: regression for one
            output, single-label for integer labels, multi-label otherwise.
        label_smoothing: as ``TrainingArguments.label_smoothing_factor``, for cross-entropy.

    Returns:
        ``(sums, counts)``: two ``(B,)`` float tensors; a sample without any target has sum 0
        and count 0.

    Raises:
        ValueError: for an unknown ``kind`` or ``problem_type``, or shapes that do not fit.

    Example:
        >>> logits = torch.zeros(2, 3, 4)                  # 2 samples, 3 positions, 4 tokens
        >>> labels = torch.tensor([[5, 1, 2], [7, 3, -100]])
        >>> sums, counts = sample_losses(logits, labels, "causal_lm")
        >>> counts.tolist()                                # position 0 is never a target
        [2.0, 1.0]
        >>> torch.allclose(sums / counts, torch.log(torch.tensor(4.0)))
        True
    """
    if kind == "sequence":
        return _sequence(logits, labels, problem_type, label_smoothing)
    if kind not in SAMPLE_LOSS_KINDS:
        raise ValueError(f"kind must be one of {SAMPLE_LOSS_KINDS}, got {kind!r}")
    if kind == "causal_lm":
        logits, labels = logits[:, :-1], labels[:, 1:]
    if logits.ndim != 3 or labels.shape != logits.shape[:2]:
        raise ValueError(
            f"{kind!r} losses need logits (B, T, V) and labels (B, T); got logits "
            f"{tuple(logits.shape)} and labels {tuple(labels.shape)}"
        )
    tokens = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(),
        labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="none",
        label_smoothing=label_smoothing,
    ).view(labels.shape)
    counts = labels.ne(IGNORE_INDEX).sum(1).to(tokens.dtype)
    return tokens.sum(1), counts


def _sequence(
    logits: Tensor, labels: Tensor, problem_type: str | None, label_smoothing: float
) -> tuple[Tensor, Tensor]:
    if logits.ndim != 2 or logits.shape[0] != labels.shape[0]:
        raise ValueError(
            f'"sequence" losses need logits (B, C) and one label per sample; got logits '
            f"{tuple(logits.shape)} and labels {tuple(labels.shape)}: for token labels use "
            '"causal_lm" or "token"'
        )
    if problem_type is None:  # the rule of transformers' sequence-classification heads
        if logits.shape[1] == 1:
            problem_type = "regression"
        elif labels.dtype in (torch.long, torch.int):
            problem_type = "single_label_classification"
        else:
            problem_type = "multi_label_classification"
    logits = logits.float()
    if problem_type == "single_label_classification":
        losses = F.cross_entropy(
            logits, labels.view(-1), reduction="none", label_smoothing=label_smoothing
        )
    elif problem_type == "regression":
        target = labels.float().view(logits.shape[0], -1)
        losses = F.mse_loss(logits, target.expand_as(logits), reduction="none").mean(1)
    elif problem_type == "multi_label_classification":
        bce = F.binary_cross_entropy_with_logits(logits, labels.float(), reduction="none")
        losses = bce.mean(1)
    else:
        raise ValueError(
            "problem_type must be single_label_classification, multi_label_classification or "
            f"regression, got {problem_type!r}"
        )
    return losses, torch.ones_like(losses)
