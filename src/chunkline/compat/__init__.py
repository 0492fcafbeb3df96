"""Drop-in facades for code written against other converters' APIs."""
