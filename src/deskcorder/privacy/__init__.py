"""privacy stage (see package docstring)."""
