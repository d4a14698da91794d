"""`python3 -m kmlab`: the command line in cli.py."""

import sys

from .cli import main

sys.exit(main())
