"""Network interpolation (ESRGAN section 3.4): blend a PSNR and a GAN generator weight by weight."""

from __future__ import annotations

import math

from torch import nn

from esrgan_lit.weights.errors import CheckpointError
from esrgan_lit.weights.io import Source, check_values, resolve


def interpolate(a: Source, b: Source, alpha: float) -> nn.Module:
    """Return a generator with weights ``(1 - alpha) * a + alpha * b`` (eval mode, CPU).

    ``a`` and ``b`` are paths, state dicts or modules, in any supported key format (they need
    not share one). Both must describe the same network: a key or shape mismatch is an error
    naming the key, and nothing is blended until every key has been checked.
    """
    alpha = float(alpha)
    if not math.isfinite(alpha) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"interpolate: alpha must be in [0, 1]; got {alpha}")
    sd_a, spec_a, name_a = resolve(a)
    sd_b, spec_b, name_b = resolve(b)
    name_a, name_b = f"a ({name_a})", f"b ({name_b})"
    only_a = [k for k in sd_a if k not in sd_b]
    only_b = [k for k in sd_b if k not in sd_a]
    if only_a or only_b:
        key, where, other = (only_a[0], name_a, name_b) if only_a else (only_b[0], name_b, name_a)
        raise CheckpointError(
            f"cannot interpolate: key {key!r} is in {where} but not in {other} "
            f"({len(only_a) + len(only_b)} mismatched keys)"
        )
    for k, ta in sd_a.items():
        if ta.shape != sd_b[k].shape:
            raise CheckpointError(
                f"cannot interpolate: key {k!r} has shape {tuple(ta.shape)} in {name_a} but "
                f"{tuple(sd_b[k].shape)} in {name_b}"
            )
    if spec_a != spec_b:
        raise CheckpointError(f"cannot interpolate: {name_a} is {spec_a} but {name_b} is {spec_b}")
    model = spec_a.build()
    check_values(model, sd_a, name_a)  # a NaN or int64 weight would blend into a broken model
    check_values(model, sd_b, name_b)
    blended = {}
    for k, ta in sd_a.items():
        tb = sd_b[k]
        if ta.is_floating_point():
            mix = (1.0 - alpha) * ta.double() + alpha * tb.to(ta.device).double()
            blended[k] = mix.to(ta.dtype)
        else:  # integer buffers (BatchNorm's num_batches_tracked): keep a's
            blended[k] = ta.clone()
    model.load_state_dict(blended, strict=True)
    return model.eval()


__all__ = ["interpolate"]
