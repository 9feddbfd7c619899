"""Official ESRGAN-family generators by name, fetched once into the torch hub cache and verified.

``esrgan-hub list`` / ``esrgan-hub download NAME``. The table and the verified download live
in :mod:`esrgan_lit.weights.hub` (the weights layer needs them to resolve names in ``load_generator``); this module is the public name and the command.
"""

from __future__ import annotations

import argparse
import sys

from esrgan_lit.weights import hub as _weights_hub
from esrgan_lit.weights.hub import *  # noqa: F403  (the public names; esrgan_lit.hub re-exports)
from esrgan_lit.weights.hub import MODELS, DownloadError, cache_dir, download

__all__ = [*_weights_hub.__all__, "main"]


def main(argv: list[str] | None = None) -> int:
    """``esrgan-hub list`` | ``esrgan-hub download NAME...`` (pre-fetch, e.g. before going offline)."""
    p = argparse.ArgumentParser(prog="esrgan-hub", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="the known names, their scale and where each is cached")
    dl = sub.add_parser("download", help="fetch and verify into the torch hub cache")
    dl.add_argument("names", nargs="+", metavar="NAME", choices=list(MODELS))
    args = p.parse_args(argv)
    if args.cmd == "list":
        for m in MODELS.values():
            state = "cached" if (cache_dir() / m.filename).is_file() else "-"
            auto = "" if m.url else "  (place by hand)"
            print(f"{m.name:32s} x{m.scale}  {state:6s} {cache_dir() / m.filename}{auto}")
        return 0
    failed = 0
    for name in args.names:
        try:
            print(download(name))
        except DownloadError as err:
            failed += 1
            print(f"error: {err}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
