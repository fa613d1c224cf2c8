"""``python -m sepconv``: the command line."""

from sepconv.cli import main

raise SystemExit(main())
