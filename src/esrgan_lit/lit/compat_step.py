"""The step-related private-Lightning-API seam (issue 13 item 4; to be merged into ``lit/compat.py``).

Every use of a private Lightning attribute by the training step lives here, with the Lightning
version it was written against, so a Lightning upgrade breaks one function (and its test in
``tests/test_compat_step.py``), not the step.

* ``uncounted_step``: in manual optimisation, ``LightningOptimizer.step`` calls
  ``_on_before_step`` / ``_on_after_step``, which the manual loop sets to advance
  ``trainer.global_step`` (``loops/optimization/manual.py``). A GAN iteration steps two
  optimisers but is one iteration (Lightning issue #17958), so the second step runs with both
  hooks disabled. Written against Lightning 2.6 (checked 2.4-2.6); no public API exists.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

WRITTEN_AGAINST = "2.6"
_STEP_HOOKS = ("_on_before_step", "_on_after_step")


def _noop() -> None:
    return None


@contextlib.contextmanager
def uncounted_step(optimizer: Any) -> Iterator[None]:
    """``optimizer.step()`` inside does not advance ``trainer.global_step``.

    ``optimizer`` is the ``LightningOptimizer`` from ``self.optimizers()``. Raises a clear error
    when Lightning no longer has the private hooks this relies on.
    """
    missing = [h for h in _STEP_HOOKS if not callable(getattr(optimizer, h, None))]
    if missing:
        raise RuntimeError(
            f"{type(optimizer).__name__} has no {missing}: the uncounted GAN step relies on "
            f"LightningOptimizer's private step hooks (written against Lightning "
            f"{WRITTEN_AGAINST}); update esrgan_lit.lit.compat_step.uncounted_step."
        )
    saved = [getattr(optimizer, h) for h in _STEP_HOOKS]
    for h in _STEP_HOOKS:
        setattr(optimizer, h, _noop)
    try:
        yield
    finally:
        for h, fn in zip(_STEP_HOOKS, saved):
            setattr(optimizer, h, fn)
