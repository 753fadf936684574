"""How numbers read on a page (Jinja filters). Pure; the raw value the API gave stays beside each
formatted one in the page (``data-value``), so what is shown can be checked against the API."""

from __future__ import annotations

import math

KIB = 1024


def count(n: float | int | None) -> str:
    """1234 -> "1,234"."""
    return "–" if n is None else f"{round(n):,}"


def usd(x: float | None) -> str:
    """Dollars: cents from $1 up, four decimals below (model calls cost fractions of a cent)."""
    if x is None:
        return "–"
    sign = "-" if x < 0 else ""
    x = abs(x)
    if x == 0:
        return "$0.00"
    return f"{sign}${x:,.2f}" if x >= 1 else f"{sign}${x:.4f}"


def ratio(r: float | None, digits: int = 1) -> str:
    """A share or rate given as a fraction: 0.1234 -> "12.3%"."""
    return "–" if r is None else f"{100 * r:.{digits}f}%"


def percent(p: float | None, digits: int = 1) -> str:
    """A value already in percent: 61.27 -> "61.3%"."""
    return "–" if p is None else f"{p:.{digits}f}%"


def ms(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:,.0f} ms" if x >= 100 else f"{x:.1f} ms"


def size(n: float | int | None) -> str:
    """Bytes in binary units: 1536 -> "1.5 KiB"; whole numbers lose their ".0" (1 GiB)."""
    if n is None:
        return "–"
    value, unit = float(n), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < KIB or unit == "TiB":
            break
        value /= KIB
    if unit == "B":
        return f"{int(value):,} B"
    return f"{value:,.0f} {unit}" if math.isclose(value, round(value)) else f"{value:,.1f} {unit}"


FILTERS = {"count": count, "usd": usd, "ratio": ratio, "percent": percent, "ms": ms, "size": size}
