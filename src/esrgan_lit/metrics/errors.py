"""The error a metric raises when the model it needs (weights, forests) is not on this machine."""


class MetricUnavailableError(RuntimeError):
    """Raised at construction when a metric cannot be computed here; ``str(err)`` is a one-line reason.

    Callers that report tables (evaluation CLI, callbacks) catch it and report ``null`` with the
    reason, never a made-up number.
    """
