"""Unsharp masking of the ground truth (Real-ESRGAN's "USM GT").

Facts from BasicSR ``USMSharp`` / ``usm_sharp``: Gaussian blur with a 51-tap kernel (its
``radius=50`` is made odd and used as the size; sigma 8, as OpenCV derives it for sigma=0), residual ``r = x - blur(x)``, sharpened
``s = clip(x + 0.5 r, 0, 1)``, blended back through a soft mask ``m = blur(|r| * 255 > 10)``:
``m s + (1 - m) x``. Edges get sharper; flat areas (where the residual is small) stay as they are.
"""

from __future__ import annotations

from kornia.filters import get_gaussian_kernel1d
from torch import Tensor, nn

from .filtering import filter_separable


class USMSharp(nn.Module):
    """``forward(x)``: the unsharp-masked image, same shape, in [0, 1]."""

    def __init__(
        self, size: int = 51, sigma: float = 0.0, weight: float = 0.5, threshold: float = 10.0
    ) -> None:
        super().__init__()
        size = int(size) + (1 - int(size) % 2)  # odd
        if sigma <= 0:  # OpenCV's rule for sigma=0
            sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
        k1 = get_gaussian_kernel1d(size, float(sigma)).reshape(-1)
        # the 2-D Gaussian is the outer product of k1 with itself: filter rows then columns
        self.register_buffer("kernel1d", k1.unsqueeze(0), persistent=False)
        self.weight, self.threshold = float(weight), float(threshold)

    def forward(self, x: Tensor) -> Tensor:
        k = self.kernel1d.to(device=x.device, dtype=x.dtype)
        residual = x - filter_separable(x, k)
        mask = ((residual.abs() * 255) > self.threshold).to(x.dtype)
        soft = filter_separable(mask, k)
        sharp = (x + self.weight * residual).clamp(0, 1)
        return soft * sharp + (1 - soft) * x
