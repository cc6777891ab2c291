"""``python bench/live_latency [options]``: run the live-page benchmark."""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a directory: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from live_latency import main

sys.exit(main())
