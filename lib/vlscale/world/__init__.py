"""The synthetic web: a world whose every example is a pure function of (seed, id)."""
