"""Which per-sample statistic tells a flipped label from a hard one?

Trains one run of a preset (the benchmark's own model, data, recipe and sampler) with a plain
loop that records, for every training forward pass, the sample's loss, p(assigned label), margin
(assigned-class logit minus the largest other) and correctness. Then, at every epoch boundary
(where the sampler selects), it forms the moving averages the sampler would keep (momentum 0.5)
and prints how well each singles out the flipped labels (AUC; 0.5 is chance), what a
two-Gaussian split of the moving-average losses flags (:mod:`dynaprune._mixture`) and the share
of samples above the chance-level loss ``log K``::

    python benchmarks/grid/noise_signals.py --config configs/cifar10-50k.yaml \\
        --data-root ../shared/data/cifar10-jpeg --label-noise 0.2 --record /tmp/sym20.pt

``--record`` keeps the observations (about 40 MB for 50k samples over 5 epochs); ``--analyse``
prints the table again from such a file without training.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    _ROOT = str(Path(__file__).resolve().parents[2])
    if _ROOT not in sys.path:
        sys.path.append(_ROOT)

import numpy as np
import torch

__all__ = ["analyse", "record"]


def record(argv: list[str]) -> dict[str, torch.Tensor]:
    """Train one ``uniform`` run (seed 0) of the preset in ``argv`` and return its observations."""
    from benchmarks.grid.cli import build_config, parse_args
    from benchmarks.grid.data import load_data
    from benchmarks.grid.runs import RunSpec
    from benchmarks.grid.train import prepare_run

    args = parse_args([*argv, "--out", "unused"])
    cfg = build_config(args)
    torch.set_num_threads(cfg["train"]["threads"] or 1)
    data = load_data(cfg["data"])
    keep = cfg["pruning"]["keep_ratios"][0]
    spec = RunSpec("uniform", keep, 0, cfg["train"]["epochs"])
    run = prepare_run(spec, cfg, data, torch.device("cpu"))
    rows: list[tuple[torch.Tensor, ...]] = []
    run.model.train()
    for epoch in range(spec.epochs):
        run.sampler.set_epoch(epoch)
        for x, y in run.loader:
            if run.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            idx = run.sampler.batch_indices(len(y))
            logits = run.model(x)
            losses = run.loss_fn(logits, y)
            with torch.no_grad():
                lg = logits.detach().float()
                own = lg.gather(1, y[:, None]).squeeze(1)
                other = lg.scatter(1, y[:, None], -math.inf).amax(1)
                p = lg.softmax(1).gather(1, y[:, None]).squeeze(1)
                rows.append(
                    (
                        idx,
                        losses.detach().float(),
                        p,
                        own - other,
                        lg.argmax(1) == y,
                        torch.full_like(idx, epoch),
                    )
                )
            loss = run.sampler.update(losses)
            run.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            run.optimizer.step()
            run.scheduler.step()
    cols = [torch.cat([r[i] for r in rows]) for i in range(6)]
    flipped = data.flipped
    if flipped is None:
        flipped = torch.zeros(data.num_train, dtype=torch.bool)
    return {
        "idx": cols[0], "loss": cols[1], "p": cols[2], "margin": cols[3],
        "correct": cols[4], "epoch": cols[5], "noisy": flipped,
        "num_classes": torch.tensor(data.num_classes),
    }  # fmt: skip


def _moving(obs: dict[str, torch.Tensor], key: str, epochs: int, n: int) -> tuple[Any, Any]:
    """Moving average and moving std (momentum 0.5, as the sampler's statistics) after
    ``epochs`` epochs; NaN for a sample without an observation."""
    mean = torch.full((n,), math.nan)
    var = torch.zeros(n)
    for e in range(epochs):
        at = obs["epoch"] == e
        idx, v = obs["idx"][at].long(), obs[key][at].float()
        old = mean[idx]
        first = old.isnan()
        d = v - torch.where(first, v, old)
        mean[idx] = torch.where(first, v, 0.5 * old + 0.5 * v)
        var[idx] = torch.where(first, torch.zeros_like(v), 0.5 * (var[idx] + 0.5 * d * d))
    return mean, var.sqrt()


def analyse(obs: dict[str, torch.Tensor]) -> str:
    """The table of AUCs and flags per epoch boundary."""
    from sklearn.metrics import roc_auc_score

    from dynaprune._mixture import ashman_d, fit_two_gaussians, flag_threshold

    noisy = obs["noisy"]
    n, epochs = noisy.numel(), int(obs["epoch"].max()) + 1
    chance = math.log(int(obs["num_classes"]))
    lines = [
        "| after epoch | seen | AUC loss | AUC -p | AUC -margin | AUC -correct | AUC std(loss) "
        "| AUC std(p) | 2-Gaussian: D | high mean | flagged | precision | recall "
        "| above chance |",
        "|---:" * 14 + "|",
    ]
    for e in range(1, epochs + 1):
        loss, loss_sd = _moving(obs, "loss", e, n)
        p, p_sd = _moving(obs, "p", e, n)
        margin, _ = _moving(obs, "margin", e, n)
        correct, _ = _moving(obs, "correct", e, n)
        seen = ~loss.isnan()
        y = noisy[seen].numpy()

        def auc(score: torch.Tensor, y: np.ndarray = y, seen: torch.Tensor = seen) -> str:
            return f"{roc_auc_score(y, score[seen].numpy()):.3f}" if 0 < y.sum() < len(y) else "—"

        fit = fit_two_gaussians(torch.nan_to_num(loss), seen)
        assert fit is not None
        flag = (loss >= flag_threshold(fit)) & seen
        hits = int((flag & noisy).sum())
        prec = f"{hits / max(1, int(flag.sum())):.2f}" if bool(noisy.any()) else "—"
        rec = f"{hits / int(noisy.sum()):.2f}" if bool(noisy.any()) else "—"
        lines.append(
            f"| {e} | {float(seen.float().mean()):.2f} | {auc(loss)} | {auc(-p)} | {auc(-margin)} "
            f"| {auc(-correct)} | {auc(loss_sd)} | {auc(p_sd)} | {ashman_d(fit):.2f} "
            f"| {fit.mean_hi:.2f} | {float(flag.float().mean()):.3f} | {prec} | {rec} "
            f"| {float((loss[seen] > chance).float().mean()):.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--analyse", type=Path, help="print the table of a recorded file")
    parser.add_argument("--record", type=Path, help="where to keep the observations")
    args, rest = parser.parse_known_args()
    if args.analyse is not None:
        obs = torch.load(args.analyse)
    else:
        obs = record(rest)
        if args.record is not None:
            torch.save(obs, args.record)
    print(analyse(obs))


if __name__ == "__main__":
    main()
