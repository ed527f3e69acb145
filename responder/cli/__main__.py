"""`python -m responder.cli`: the same as the `calfline` command."""

import sys

from responder.cli.calfline import main

if __name__ == "__main__":
    sys.exit(main())
