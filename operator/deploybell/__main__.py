"""`python -m deploybell` is the `deploybell` command."""

import sys

from deploybell.cli import main

sys.exit(main())
