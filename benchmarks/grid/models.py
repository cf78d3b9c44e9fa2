"""Models of the benchmark presets, built from the input shape and the number of classes.

* ``mlp``: one hidden layer, for tiny inputs such as the 8x8 digits.
* ``tiny_cnn``: three 3x3 conv layers, for the ``quick`` preset (digits).
* ``small_cnn``: a four-stage VGG-style CNN sized for CIFAR on a few CPU cores.
* ``resnet8``: the CIFAR ResNet-8 (widths 16/32/64), a second small architecture.
* ``resnet18``: torchvision's ResNet-18 with the CIFAR stem (3x3 stride-1 first conv, no max-pool).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["build_model"]


def _conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


def _mlp(channels: int, size: tuple[int, int], classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(channels * size[0] * size[1], 256),
        nn.ReLU(inplace=True),
        nn.Linear(256, classes),
    )


def _tiny_cnn(channels: int, size: tuple[int, int], classes: int) -> nn.Module:
    return nn.Sequential(
        *_conv_bn(channels, 16),
        *_conv_bn(16, 32),
        nn.MaxPool2d(2),
        *_conv_bn(32, 32),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, classes),
    )


def _small_cnn(channels: int, size: tuple[int, int], classes: int) -> nn.Module:
    # pooling right after the first layer keeps the full-resolution work, the CPU bottleneck, small
    return nn.Sequential(
        *_conv_bn(channels, 24),
        nn.MaxPool2d(2),
        *_conv_bn(24, 48),
        nn.MaxPool2d(2),
        *_conv_bn(48, 96),
        nn.MaxPool2d(2),
        *_conv_bn(96, 192),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
        nn.Linear(192, classes),
    )


class _Block(nn.Module):
    """A basic residual block (He et al., 2016): two 3x3 convolutions, a 1x1 projection where
    the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


def _resnet8(channels: int, size: tuple[int, int], classes: int) -> nn.Module:
    # the CIFAR ResNet-8 (He et al., 2016, section 4.2: n = 1, widths 16/32/64), a second
    # architecture at about 1.4x the small CNN's multiply-adds
    return nn.Sequential(
        *_conv_bn(channels, 16),
        _Block(16, 16, 1),
        _Block(16, 32, 2),
        _Block(32, 64, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, classes),
    )


def _resnet18(channels: int, size: tuple[int, int], classes: int) -> nn.Module:
    from torchvision.models import resnet18

    model = resnet18(num_classes=classes)
    model.conv1 = nn.Conv2d(channels, 64, 3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


_BUILDERS = {
    "mlp": _mlp,
    "tiny_cnn": _tiny_cnn,
    "small_cnn": _small_cnn,
    "resnet8": _resnet8,
    "resnet18": _resnet18,
}


def build_model(name: str, image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Builds a freshly initialised model.

    Args:
        name: one of ``mlp``, ``tiny_cnn``, ``small_cnn``, ``resnet8``, ``resnet18``.
        image_shape: ``(channels, height, width)`` of the inputs.
        num_classes: size of the output layer.

    Raises:
        ValueError: for an unknown name.

    Example:
        >>> build_model("tiny_cnn", (1, 8, 8), 10)(__import__("torch").zeros(2, 1, 8, 8)).shape
        torch.Size([2, 10])
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown model.name {name!r}; valid choices: {sorted(_BUILDERS)}")
    channels, height, width = image_shape
    return _BUILDERS[name](channels, (height, width), num_classes)
