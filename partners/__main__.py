"""Entry point: python -m partners."""

import sys

from partners.cli import main

sys.exit(main())
