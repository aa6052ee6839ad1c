"""Text for a human's terminal: control characters shown, never obeyed.

File names, server answers and error messages can hold anything a file system or a peer
allows: ``ESC [ 2 J`` clears the screen, ``ESC ] 52`` writes the clipboard, a carriage
return overwrites the line before it, U+202E turns the rest of a name around. Every line the
CLI prints for a person (stderr messages, progress notes, plain-text reports) passes through
``escape_controls`` first; the JSON lines on stdout are escaped by ``json.dumps`` already.
"""

from __future__ import annotations

import unicodedata

# bidirectional embeddings, overrides and isolates: they reorder what follows them
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# C0, DEL and C1 controls; line and paragraph separators; lone surrogates (undecodable
# bytes of a file name, as Python keeps them)
_ESCAPED_CATEGORIES = frozenset({"Cc", "Zl", "Zp", "Cs"})


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """``text`` with each control character written as a visible escape (``\\x1b``,
    ``\\u202e``); everything else, non-ASCII letters included, unchanged."""
    return "".join(
        _escape(char)
        if char in _BIDI_CONTROLS or unicodedata.category(char) in _ESCAPED_CATEGORIES
        else char
        for char in text
    )
