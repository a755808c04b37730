"""``python -m softgso``."""

from .cli import main

main()
