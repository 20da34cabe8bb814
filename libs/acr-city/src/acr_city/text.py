"""Text normalisation, query parsing and tiny edit-distance helpers."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .model import InvalidQuery

MAX_QUERY_CHARS = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NON_WORD = re.compile(r"[^0-9a-z]+")
_HOUSE = re.compile(r"^\d{1,4}[a-z]?$")
_POSTCODE = re.compile(r"^\d{5}$")
ABBREVIATIONS: dict[str, str] = {
    "st": "street",
    "rd": "road",
    "ave": "avenue",
    "av": "avenue",
    "blvd": "boulevard",
    "ln": "lane",
    "dr": "drive",
    "ct": "court",
    "pl": "place",
    "sq": "square",
    "hwy": "highway",
    "cres": "crescent",
}


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    """A query split into street/name text, house number and postcode."""

    text: str
    house_number: int | None
    postcode: str | None
    unexpanded: str = ""  # text before abbreviation expansion (differs only if one was expanded)


def validate(query: str) -> str:
    """Reject non-strings, empty, over-long and control-character queries."""
    if not isinstance(query, str):
        raise InvalidQuery("query must be a string")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidQuery(f"query longer than {MAX_QUERY_CHARS} characters")
    if _CONTROL.search(query):
        raise InvalidQuery("query contains control characters")
    if not query.strip():
        raise InvalidQuery("query is empty")
    return query


def normalize(text: str) -> str:
    """Casefold, strip accents, keep [0-9a-z] words separated by single spaces."""
    if text.isascii():
        folded = text.lower()
    else:
        decomposed = unicodedata.normalize("NFKD", text.casefold())
        folded = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NON_WORD.sub(" ", folded).strip()


def expand_abbreviations(words: list[str]) -> list[str]:
    """Expand street-type abbreviations ("st" -> "street") except in first position."""
    return [w if i == 0 else ABBREVIATIONS.get(w, w) for i, w in enumerate(words)]


def parse_query(query: str) -> ParsedQuery:
    """Validate and split a free-text address query into its parts."""
    words = normalize(validate(query)).split()
    house: int | None = None
    postcode: str | None = None
    rest: list[str] = []
    for word in words:
        if postcode is None and _POSTCODE.match(word):
            postcode = word
        elif house is None and _HOUSE.match(word):
            house = int(word.rstrip("abcdefghijklmnopqrstuvwxyz"))
        else:
            rest.append(word)
    text = " ".join(expand_abbreviations(rest))
    raw = " ".join(rest)
    return ParsedQuery(text, house, postcode, raw if raw != text else "")


def deletions(word: str) -> list[str]:
    """All strings obtained by deleting exactly one character."""
    return [word[:i] + word[i + 1 :] for i in range(len(word))]


def within_one_edit(a: str, b: str) -> int:
    """0 if equal, 1 if one substitution/insertion/deletion/adjacent transposition apart, else 2.

    Linear time with C-level slice comparisons (no dynamic programming).
    """
    if a == b:
        return 0
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return 2
    if la < lb:
        a, b, la, lb = b, a, lb, la
    i = 0
    while i < lb and a[i] == b[i]:
        i += 1
    if la != lb:
        return 1 if a[i + 1 :] == b[i:] else 2
    if a[i + 1 :] == b[i + 1 :]:
        return 1
    swapped = i + 1 < la and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :]
    return 1 if swapped else 2
