"""The ConvNet of the dataset condensation papers (DC, DSA, DM, IDM, CAFE).

Follows ``ConvNet`` in VICO-UoE/DatasetCondensation ``networks.py`` with its defaults
(``net_width=128, net_depth=3, net_act='relu', net_norm='instancenorm',
net_pooling='avgpooling'``): ``depth`` blocks of 3x3 convolution (padding 1) -> instance norm
(``GroupNorm(width, width)`` with affine parameters, as the official code writes it) -> ReLU
-> 2x2 average pooling, then one linear layer on the flattened features.
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch import Tensor, nn

from dynaprune._checks import check_count

__all__ = ["ConvNet"]


class ConvNet(nn.Module):
    """The papers' ConvNet.

    Args:
        channels: input channels.
        num_classes: outputs of the linear head.
        image_size: ``(height, width)`` of the inputs; each block halves both.
        width: channels of every convolution (128 in the papers).
        depth: number of conv -> norm -> ReLU -> pool blocks (3 for 32x32 images).
        generator: where the initial weights are drawn from (PyTorch's default rules, layer
            by layer, the draws a global RNG seeded alike would give), on the CPU; ``None``:
            the global RNG, as any ``nn.Module``.

    Example:
        >>> import torch
        >>> net = ConvNet(3, 10, (32, 32))
        >>> net(torch.zeros(2, 3, 32, 32)).shape, net.embed(torch.zeros(2, 3, 32, 32)).shape
        (torch.Size([2, 10]), torch.Size([2, 2048]))
    """

    def __init__(
        self,
        channels: int = 3,
        num_classes: int = 10,
        image_size: tuple[int, int] = (32, 32),
        width: int = 128,
        depth: int = 3,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        check_count("channels", channels, 1)
        check_count("num_classes", num_classes, 1)
        check_count("width", width, 1)
        check_count("depth", depth, 1)
        height, wide = image_size
        if min(height, wide) < 2**depth:
            raise ValueError(
                f"image_size must be at least {2**depth} on each side for depth {depth}, "
                f"got {tuple(image_size)}"
            )
        # With a generator, the layers are made without drawing (on the meta device), then
        # given storage and drawn from it.
        with torch.device("meta") if generator is not None else contextlib.nullcontext():
            layers: list[nn.Module] = []
            for d in range(depth):
                layers += [
                    nn.Conv2d(channels if d == 0 else width, width, kernel_size=3, padding=1),
                    nn.GroupNorm(width, width, affine=True),
                    nn.ReLU(),
                    nn.AvgPool2d(kernel_size=2, stride=2),
                ]
            self.depth = depth
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Linear(width * (height >> depth) * (wide >> depth), num_classes)
        if generator is not None:
            self.to_empty(device="cpu")
            self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator) -> None:
        """Draw every weight afresh from ``generator`` by PyTorch's default rules, in the order
        the layers were made (``Conv2d`` and ``Linear``: Kaiming-uniform weights, uniform biases
        within ``1 / sqrt(fan_in)``; ``GroupNorm``: ones and zeros)."""
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
                bound = 1.0 / math.sqrt(module.weight[0].numel())  # 1 / sqrt(fan_in)
                assert module.bias is not None  # every layer here has one
                nn.init.uniform_(module.bias, -bound, bound, generator=generator)
            elif isinstance(module, nn.GroupNorm):
                module.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        logits: Tensor = self.classifier(self.embed(x))
        return logits

    def embed(self, x: Tensor) -> Tensor:
        """The flattened features (the classifier's input), as DM and IDM match them."""
        features: Tensor = self.features(x)
        return features.flatten(1)

    def feature_maps(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Logits and CAFE's layer outputs ``[flat, pooled, block_depth, ..., block_1]``.

        ``block_i`` is block ``i``'s output after its ReLU, before its pooling; ``pooled`` is
        the last pooling's output and ``flat`` its flattened form (kaiwang960112/CAFE
        ``networks.py``, ``ConvNet.forward``, which returns ``[f5, f4, f3, f2, f1]``).
        """
        blocks: list[Tensor] = []
        for d in range(self.depth):
            conv, norm, act, pool = self.features[4 * d : 4 * d + 4]
            x = act(norm(conv(x)))
            blocks.append(x)
            x = pool(x)
        flat = x.flatten(1)
        return self.classifier(flat), [flat, x, *reversed(blocks)]
