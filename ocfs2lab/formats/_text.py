"""Small text helpers shared by the parsers."""

from __future__ import annotations

import re

from ocfs2lab.errors import ParseError

# CSI sequences (colours, cursor moves) and two-character escapes.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")


def strip_ansi(text: str) -> str:
    """``text`` without ANSI escape sequences (colours of ``--color=always``, consoles)."""
    return _ANSI.sub("", text)


def require_text(text: object, what: str) -> str:
    """``text`` itself when it is a ``str``.

    Raises:
        ParseError: It is not.
    """
    if not isinstance(text, str):
        raise ParseError(what, f"expected text, got {type(text).__name__}")
    return text
