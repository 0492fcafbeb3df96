"""The built-in plugins: one module per stage (and one for the built-in chunking policies)."""
