"""``python bench/scale_out [options]``: run the scale-out benchmark."""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a directory: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scale_out import main

sys.exit(main())
