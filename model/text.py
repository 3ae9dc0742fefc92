"""Text clean-up applied the same way in training and at inference."""

import html
import re

LINK = re.compile(r"(https?://\S+|www\.\S+|pic\.twitter\.com/\S+)")
SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Unescape HTML entities as exported by Twitter, replace links by one token, fold white space.

    Links carry no meaning here, and their random characters would otherwise become many word pieces.
    """
    return SPACE.sub(" ", LINK.sub("http", html.unescape(text))).strip()
