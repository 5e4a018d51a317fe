"""``python -m snnkit``: the command line (what ``torchrun ... -m snnkit run`` starts)."""

from snnkit.cli import main

main()
