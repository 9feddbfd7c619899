"""esrgan-lit: ESRGAN (Wang et al., ECCV Workshops 2018) with PyTorch Lightning and Hydra.

Importing the package stays cheap: the network, metric and inference layers are separate
subpackages (``esrgan_lit.archs``, ``esrgan_lit.metrics``, ...) that know nothing of Lightning.
"""

__version__ = "0.1.0"  # the only place the version is written (pyproject reads it)
