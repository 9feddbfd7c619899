"""Old home of the low-memory CPU forward; it now lives with RRDBNet (``archs.rrdbnet_striped``)."""

from esrgan_lit.archs.rrdbnet_striped import rrdbnet_forward, striped_forward

__all__ = ["rrdbnet_forward", "striped_forward"]
