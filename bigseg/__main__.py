"""``python -m bigseg`` runs the command line, like the ``bigseg`` script."""

from bigseg.cli import main

main()
