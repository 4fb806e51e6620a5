"""Text clean-up and clause structure shared by the AU reader and the answer reader.

Both readers decide *scope*: which words a negation, a hedge or a "most likely" governs.
Scope ends at a clause boundary: sentence punctuation, a line break, or a conjunction
that starts a new clause ("but", "while", "because", ...). This module holds those
boundaries and the one normalisation every text goes through first.
"""

from __future__ import annotations

import re
import unicodedata

# Dash-like characters that NFKC leaves alone: "AU‑12" (non-breaking hyphen), "AU12 — absent".
_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63"), "-")
# Idioms whose negation word negates nothing: "There is no doubt that AU12 is active".
_IDIOMS = re.compile(
    r"\b(?:no\s+doubt|not\s+only|not\s+just|not\s+merely|not\s+least|no\s+question|no\s+wonder|"
    r"nothing\s+but|not\s+surprisingly|not\s+to\s+mention|not\s+unlike)\b",
    re.IGNORECASE,
)


def normalize(text: str) -> str:
    """NFKC (full-width "ＡＵ１２" -> "AU12", "，" -> ","), one kind of dash, no markdown emphasis,
    and negation idioms blanked out.

    >>> normalize("**ＡＵ‑１２**: absent — no doubt").rstrip()
    'AU-12: absent -'
    """
    text = unicodedata.normalize("NFKC", text or "").translate(_DASHES)
    text = text.replace("*", "").replace("`", "")
    return _IDIOMS.sub(lambda m: " " * len(m.group()), text)


# A clause boundary: sentence punctuation (not the dot inside "0.8"), a line break, CJK
# full stops, or a conjunction that opens a new clause. Commas are boundaries for
# negation scope too ("No frown, but ..."); lists are joined before scope is looked at.
CLAUSE_BREAK = re.compile(
    r"[;!?\n。！？；]|\.(?!\d)|,|"
    r"\b(?:and|but|while|whereas|yet|so|although|though|however|because|since|which|whose|"
    r"suggesting|indicating|meaning|thus|therefore|hence|with)\b",
    re.IGNORECASE,
)
# Parentheticals without an AU inside are asides ("AU4 (brow lowerer) is absent"): skipped
# when measuring distance between a cue and what it governs.
PARENTHETICAL = re.compile(r"\([^()]*\)")


def words(text: str) -> int:
    """Number of words (letters or digits) in a short span of text."""
    return len(re.findall(r"[^\W_]+(?:'[^\W_]+)?", text))
