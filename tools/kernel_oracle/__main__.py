"""``python -m tools.kernel_oracle``: see cli.py."""

import sys

from .cli import main

sys.exit(main())
