"""How the paper prints a number: fixed digits, a true minus sign, '--' where nothing was measured."""
from __future__ import annotations

import numpy as np

MINUS = "\u2212"


def finite(x) -> bool:
    """A number that was measured: not None, not NaN."""
    return x is not None and bool(np.isfinite(x))


def fmt(x, digits: int = 1, sign: bool = False) -> str:
    """A number as the text prints it: fixed digits, a true minus sign, '+' when `sign`; '--' for NaN/None."""
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "--"
    s = f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"
    return s.replace("-", MINUS)


def join_and(items: list[str]) -> str:
    """'a, b and c'."""
    return ", ".join(items[:-1]) + f" and {items[-1]}" if len(items) > 1 else "".join(items)
