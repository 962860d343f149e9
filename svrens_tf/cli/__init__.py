"""Command-line programs (absl apps), one module per console script declared in setup.py."""
