"""Text helpers: normalisation, parsing and the linear one-edit check against a DP reference."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from acr_city.text import normalize, parse_query, within_one_edit


def osa(a: str, b: str) -> int:
    """Reference optimal-string-alignment distance (dynamic programming)."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


@settings(max_examples=500, deadline=None)
@given(st.text("abc ", max_size=8), st.text("abc ", max_size=8))
def test_within_one_edit_matches_reference(a: str, b: str) -> None:
    assert within_one_edit(a, b) == min(osa(a, b), 2)


def test_normalize_and_parse() -> None:
    assert normalize("  Åkerlundinkatu,  Ö ") == "akerlundinkatu o"
    parsed = parse_query("12b Harbour St., 00140")
    assert (parsed.text, parsed.house_number, parsed.postcode) == ("harbour street", 12, "00140")
    assert parse_query("Mannerheimintie 5").house_number == 5
