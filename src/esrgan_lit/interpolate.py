"""Network interpolation CLI: ``python -m esrgan_lit.interpolate psnr=A gan=B alpha=0.8
output=OUT.safetensors`` (Hydra, so ``-m alpha=0,0.2,...,1`` sweeps).

``theta = (1 - alpha) * theta_PSNR + alpha * theta_GAN`` (paper Sec. 3.4) through
:func:`esrgan_lit.weights.interpolate`; any checkpoint format it reads works for A and B.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from esrgan_lit.cli_errors import user_errors
from esrgan_lit.config import config_dir
from esrgan_lit.weights import interpolate, save_generator

log = logging.getLogger(__name__)


def output_path(output: str, alpha: float) -> Path:
    """``output`` itself, or ``<output>/interp_alpha<alpha>.safetensors`` for a directory."""
    out = Path(output).expanduser()
    if out.is_dir() or str(output).endswith(("/", "\\")) or not out.suffix:
        return out / f"interp_alpha{alpha:g}.safetensors"
    return out


def interpolate_to_file(psnr: str, gan: str, alpha: float, output: str) -> Path:
    """Blend the two generators and write the result (.safetensors or BasicSR .pth)."""
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    for name, path in (("psnr", psnr), ("gan", gan)):
        if not Path(path).is_file():
            raise FileNotFoundError(f"{name}={path!r}: no such checkpoint file")
    model = interpolate(str(psnr), str(gan), float(alpha))
    dst = output_path(str(output), float(alpha))
    save_generator(model, dst)
    log.info("alpha=%g: wrote %s", alpha, dst)
    return dst


@hydra.main(config_path=str(config_dir()), config_name="interpolate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    with user_errors("esrgan-interpolate"):
        dst = interpolate_to_file(cfg.psnr, cfg.gan, float(cfg.alpha), str(cfg.output))
    print(dst)


if __name__ == "__main__":
    main()
