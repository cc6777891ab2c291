"""``python bench/ocpp_ingest [options]``: run the OCPP ingest benchmark."""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a directory: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ocpp_ingest import main

sys.exit(main())
