"""``python -m softgso``."""

from .entry import main

main()
