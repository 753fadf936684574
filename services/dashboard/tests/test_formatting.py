"""How numbers read on the page."""

from __future__ import annotations

from modelyard_dashboard.formatting import count, ms, percent, ratio, size, usd


def test_counts_money_rates_and_sizes():
    assert (count(1234567), count(0), count(None)) == ("1,234,567", "0", "–")
    assert (usd(0), usd(0.01234), usd(1234.5), usd(-0.5), usd(2.0)) == ("$0.00", "$0.0123", "$1,234.50", "-$0.5000", "$2.00")
    assert (ratio(0.1234), ratio(0), ratio(1)) == ("12.3%", "0.0%", "100.0%")
    assert (percent(61.27), percent(80, 0)) == ("61.3%", "80%")
    assert (ms(12.345), ms(440.4), ms(1234)) == ("12.3 ms", "440 ms", "1,234 ms")
    assert (size(0), size(1536), size(100 * 1024 * 1024), size(1024 ** 3), size(5000)) == ("0 B", "1.5 KiB", "100 MiB", "1 GiB", "4.9 KiB")
