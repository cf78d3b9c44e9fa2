"""How the guard's two-Gaussian fit splits recorded losses, raw and winsorised.

Reads the files ``guard_trace.py --dump`` writes (the moving-average losses at every selection
of one run, and the flipped-label mask under the benchmark's label noise) and prints, for every
selection after half the samples have a loss, the fit of :func:`dynaprune._mixture.
fit_two_gaussians` on the raw losses and on losses winsorised at their 95th and 98th
percentiles: the high component's share and mean, Ashman's D, the flag threshold, the share
flagged and, under noise, the flags' precision and recall, the AUC of the loss itself and the
precision of excluding the true noise rate by loss (the flipped share of the highest losses, as
many as there are flipped labels)::

    python benchmarks/grid/guard_trace.py --config configs/cifar10-50k.yaml \\
        --data-root ../shared/data/cifar10-jpeg --keep-ratios 0.5 --lr 0.2 --label-noise 0.2 \\
        --dump results/dumps/sym20-lr02.pt
    python benchmarks/grid/guard_fits.py results/dumps/sym20-lr02.pt
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    _ROOT = str(Path(__file__).resolve().parents[2])
    if _ROOT not in sys.path:
        sys.path.append(_ROOT)

import torch
from torch import Tensor

from benchmarks.grid.flags import auc, cells
from dynaprune._mixture import ashman_d, fit_two_gaussians, flag_threshold

__all__ = ["fit_table", "top_precision"]

TAILS = (None, 0.98, 0.95)


def top_precision(loss: Tensor, flipped: Tensor | None) -> str:
    """The share of flipped labels among the measured samples of highest loss, as many as there
    are flipped labels: what excluding the true noise rate by loss would exclude correctly."""
    if flipped is None:
        return "—"
    seen = ~loss.isnan()
    k = min(int(flipped.sum()), int(seen.sum()))
    top = torch.where(seen, loss, torch.full_like(loss, -math.inf)).topk(k).indices
    return f"{float(flipped[top].float().mean()):.3f}"


def fit_table(losses: list[Tensor], flipped: Tensor | None) -> str:
    """The markdown table of the fits at every selection where half the samples have a loss."""
    lines = [
        "| selection | seen | AUC of the loss | precision at the noise rate | fit | high share "
        "| high mean | D | threshold | flagged | precision | recall |",
        "|---:" * 4 + "|---" + "|---:" * 7 + "|",
    ]
    for i, loss in enumerate(losses):
        seen = ~loss.isnan()
        if float(seen.float().mean()) < 0.5:
            continue
        score = "—" if flipped is None else f"{auc(loss[seen], flipped[seen]):.3f}"
        score += f" | {top_precision(loss, flipped)}"
        for tail in TAILS:
            m = fit_two_gaussians(loss.nan_to_num(0.0), seen, tail=tail)
            name = "raw" if tail is None else f"winsorised at {tail:.2f}"
            if m is None:
                lines.append(f"| {i} | | {score} | {name} | — | — | — | — | — | — | — |")
                continue
            t = flag_threshold(m)
            flag = seen & (loss >= t)
            prec, rec = cells(flag, flipped)
            lines.append(
                f"| {i} | {float(seen.float().mean()):.2f} | {score} | {name} | {m.weight:.2f} "
                f"| {m.mean_hi:.2f} | {ashman_d(m):.2f} | {t:.2f} "
                f"| {float(flag.float().mean()):.3f} | {prec} | {rec} |"
                if math.isfinite(t)
                else f"| {i} | {float(seen.float().mean()):.2f} | {score} | {name} "
                f"| {m.weight:.2f} | {m.mean_hi:.2f} | {ashman_d(m):.2f} | inf | 0 | — | — |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dumps", nargs="+", type=Path, help="files of guard_trace.py --dump")
    args = parser.parse_args()
    for path in args.dumps:
        blob = torch.load(path)
        print(f"## {path.name} (test accuracy {blob['accuracy']:.2f} %)\n")
        print(fit_table(blob["losses"], blob["flipped"]))
        print()


if __name__ == "__main__":
    main()
