"""``python -m smsbridge.testing NAME``: serve a fake gateway until interrupted."""

from __future__ import annotations

import sys

from .serve import main

if __name__ == "__main__":
    main()
    sys.exit(0)
