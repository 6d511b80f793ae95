"""`python -m fashionlens` is the `fashionlens` command, for environments where the script is not on PATH."""

from fashionlens.cli import main

main()
