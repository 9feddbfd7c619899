"""Small helpers shared by every layer (no Lightning, no Hydra)."""

from esrgan_lit.utils.atomic import atomic_write_path

__all__ = ["atomic_write_path"]
