"""``python -m plugpay.cli``: the same as the ``plugpay`` command."""

import sys

from plugpay.cli import main

sys.exit(main())
