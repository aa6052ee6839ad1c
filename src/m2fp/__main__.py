"""``python -m m2fp``."""

from m2fp.cli import main

main()
