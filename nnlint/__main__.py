"""`python -m nnlint`: the command line."""

import sys

from nnlint.cli import main

sys.exit(main())
