"""`python -m helpers ...`: the course's command line (see helpers/cli.py)."""

import sys

from .cli import main

sys.exit(main())
