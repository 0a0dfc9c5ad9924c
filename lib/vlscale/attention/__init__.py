"""Attention maps of the MAP head and how well they point at the object (the paper's Tables 6 and 7, measured)."""
