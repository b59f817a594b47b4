"""Shortening text for a table cell: at a word boundary, always marked with an ellipsis."""

from __future__ import annotations

ELLIPSIS = "\u2026"


def clip(text: str, width: int) -> str:
    """``text`` on one line and at most ``width`` characters.

    A longer text is cut at the last space in its second half (else inside the word) and ends
    with an ellipsis, so a reader always sees that something was left out.
    """
    one = " ".join(text.split())
    if len(one) <= width:
        return one
    cut = one[: max(1, width - 1)]
    space = cut.rfind(" ")
    if space >= width // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.") + ELLIPSIS
