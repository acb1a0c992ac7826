"""`python -m dspyops.cli`: the `dspyops` command."""

import sys

from dspyops.cli.main import main

sys.exit(main())
