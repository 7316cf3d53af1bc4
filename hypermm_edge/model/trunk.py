"""VGG11's conv trunk with torchvision's parameter names, without depending on torchvision."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch import nn

from hypermm_edge.errors import CheckpointError

log = logging.getLogger(__name__)

# torchvision's published ImageNet weights for vgg11 (IMAGENET1K_V1).
VGG11_IMAGENET_URL = "https://download.pytorch.org/models/vgg11-8a719046.pth"
VGG11_LAYOUT: tuple[int | str, ...] = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


def conv_layer_indices() -> list[int]:
    """Indices in `features` of the 3x3 convs: 0, 3, 6, 8, 11, 13, 16, 18."""
    out, i = [], 0
    for item in VGG11_LAYOUT:
        if item == "M":
            i += 1
        else:
            out.append(i)
            i += 2
    return out


class VGG11Trunk(nn.Module):
    """`features` of torchvision's vgg11: 3x3 conv + ReLU blocks and five 2x2 max-pools."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in VGG11_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                assert isinstance(item, int)
                layers += [nn.Conv2d(channels, item, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                channels = item
        self.features = nn.Sequential(*layers)
        for m in self.features:
            if isinstance(m, nn.Conv2d):  # torchvision's VGG init: keeps random features' scale
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def load_backbone_weights(trunk: VGG11Trunk, source: str | None) -> None:
    """Fill the trunk from `imagenet` (torchvision's URL), a local file, or leave it random.

    Random weights are for tests and the demo only; a warning says so.
    """
    if source is None or source == "random":
        log.warning("VGG11 trunk has random weights (no --backbone-weights): fine for tests and "
                    "the demo, not for real data")
        return
    if source == "imagenet":
        try:
            state = torch.hub.load_state_dict_from_url(VGG11_IMAGENET_URL, map_location="cpu",
                                                       weights_only=True, progress=False)
        except Exception as exc:  # network errors come in many types
            raise CheckpointError(
                f"could not download ImageNet VGG11 weights from {VGG11_IMAGENET_URL} ({exc}); "
                "download that file elsewhere and pass its path to --backbone-weights") from exc
    else:
        path = Path(os.path.expanduser(source))
        if not path.is_file():
            raise CheckpointError("backbone weights file not found", path=path)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointError(f"cannot read backbone weights safely: {exc}", path=path) from exc
    features = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    if not features:
        raise CheckpointError(f"no 'features.*' tensors in backbone weights {source}")
    try:
        trunk.features.load_state_dict(features, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"backbone weights {source} do not fit VGG11's trunk: {exc}") from exc
