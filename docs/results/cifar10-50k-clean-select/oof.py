"""Screen: does an out-of-fold loss rank the flipped labels better than the moving-average loss?

The benchmark's twofold irreducible losses (each half of the training set scored by a model
trained only on the other half, ``StaticScorer.irreducible("twofold", ...)``, as the ``rho``
methods use them) under 20 % symmetric noise, lr 0.2, seed 0: their AUC against the flipped
labels and the precision of excluding the true noise rate by them (``guard_fits.top_precision``).
Seconds are on the clock of a loaded machine (two other runs beside it).

    OMP_NUM_THREADS=1 python docs/results/cifar10-50k-clean-select/oof.py 0.2 symmetric 1,2
"""

import sys

import torch

sys.path.insert(0, ".")
from benchmarks.grid.config import load_config, validate_config
from benchmarks.grid.data import load_data
from benchmarks.grid.flags import auc
from benchmarks.grid.guard_fits import top_precision
from benchmarks.grid.static_scores import StaticScorer

torch.set_num_threads(1)
cfg = load_config("configs/cifar10-50k.yaml")
cfg["data"]["root"] = "../shared/data/cifar10-jpeg"
cfg["data"]["label_noise"] = float(sys.argv[1])
cfg["data"]["label_noise_kind"] = sys.argv[2]
cfg["train"]["lr"] = 0.2
cfg = validate_config(cfg)
data = load_data(cfg["data"])
sc = StaticScorer(cfg, data, torch.device("cpu"))
f = data.flipped
for epochs in [int(e) for e in sys.argv[3].split(",")]:
    il, sec = sc.irreducible("twofold", 0, epochs)
    line = f"{sys.argv[1]} {sys.argv[2]} epochs {epochs} sec {sec:.0f} AUC {auc(il, f):.3f}"
    print(line, "prec@rate", top_precision(il, f), flush=True)
