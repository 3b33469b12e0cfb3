"""`python -m flows` runs the `tome` command line (the same as the installed `tome` script)."""

from flows.cli import main

main()
