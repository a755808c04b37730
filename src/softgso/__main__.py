"""``python -m softgso``."""

from .cli.entry import main

main()
