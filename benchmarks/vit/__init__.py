"""ViT benchmark: token and attention pruning on CIFAR-10 (run.py)."""
