"""The fuzz pass: hypothesis example counts come from SOFTGSO_FUZZ_EXAMPLES.

The default (a small count) keeps the ordinary ``pytest`` run quick; ``make fuzz`` raises it for
CI and ``make fuzz-long`` to 200000. The shared strategies of tests/ and this folder's targets are
made importable here.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent
for folder in (HERE, HERE.parent):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
