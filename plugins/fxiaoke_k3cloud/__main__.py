"""``python -m fxiaoke_k3cloud``: see :mod:`fxiaoke_k3cloud.cli`."""

from __future__ import annotations

import sys

from fxiaoke_k3cloud.cli import main

if __name__ == "__main__":
    sys.exit(main())
