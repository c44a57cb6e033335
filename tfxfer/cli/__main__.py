"""`python -m tfxfer.cli`: the same as the `tfxfer` command."""

import sys

from tfxfer.cli import main

sys.exit(main())
