"""Which AUs a text asserts as present, which it denies, and which it only supposes.

Three steps, each small enough to check by eye:

1. **Mentions.** Every way an AU is written: "AU12", "AU 12", "au-12", "AU‑12", "ＡＵ12",
   "AU06", intensity letters ("AU12E"), sides ("AU L12", "L12", "R14"), combinations
   ("AU25+26", "AU1+2+4"), lists under one head ("AUs 1, 2, and 5", "AU 6, 12 and 25",
   "Active AUs: 6, 12, 25", "Action Units 6 and 12"), and codes glued to CJK text
   ("AU6和AU12"). A lookbehind for a Latin letter or digit replaces `\\b`, which treats
   CJK characters as word characters.
2. **Groups.** Mentions joined only by list glue ("AU1, AU2 or AU5", "AU12 and AU6")
   form one group: a negation or a predicate reaches every member of its group.
3. **Scope.** Each group is asserted, denied or supposed:
   - denied by a cue before it in the same clause, within a few words ("no AU4",
     "without the lip corner depressor (AU15)", "the absence of AU6"); a cue governs only
     the first group after it, so "The absence of AU6 suggests a posed smile (AU12)" keeps AU12;
   - denied by a predicate after it ("AU12: absent", "AU4 (brow lowerer) is absent",
     "AUs 1, 2, and 5 are not active", "- AU12 (lip corner puller): absent", "| AU12 | no |",
     "AU4: 0");
   - supposed (neither cited nor denied) in a conditional, typical or textbook statement
     ("if AU4 were present", "a smile would show AU12", "happiness typically involves AU6",
     "fear also involves AU4", "AU12 would be expected", "AU12 might be present").
   An AU asserted anywhere counts as cited, even if it is also denied elsewhere.

What it deliberately does not read: AU codes without any AU marker ("6 and 12 are active"),
ranges ("AU1-5"), tables whose AU codes and values sit in different rows, and negation in
languages other than English beyond a few Chinese cues (没有, 无, 未见, 缺乏, 不存在).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..labels import label_aliases
from .text import CLAUSE_BREAK, PARENTHETICAL, words

_ITEM = (
    r"(?:(?-i:[LRUB])\s?)?0*(?P<code>\d{1,2})(?:(?-i:[A-E])|(?-i:[LR]))?"  # side, code, intensity letter
    r"(?![\dA-Za-z]|\.\d)"
)
# An AU marker and its first code: "AU12", "AUs: 6", "Action Unit 12", or a side-prefixed "L12".
_START = re.compile(
    r"(?<![A-Za-z0-9])(?:(?:AUs?|Action\s+Units?)\s*[-_#:(]?\s*|(?=(?-i:[LR])\d))" + _ITEM, re.IGNORECASE
)
# The next code in the same list: ", 2", ", and 5", "+26", "/26", " and AU12", "+AU12".
_NEXT = re.compile(
    r"(?P<glue>[ \t]*(?:,[ \t]*(?:and|or|&)?|and|or|nor|&|/|\+|plus)[ \t]*)(?P<prefix>AUs?[ \t]*[-_]?[ \t]*)?" + _ITEM,
    re.IGNORECASE,
)
# Glue that joins two separately written mentions into one group.
_GROUP_GLUE = re.compile(r"^[ \t,/+&()]*(?:(?:or|and|nor|as\s+well\s+as|plus)\b[ \t,/+&()]*)?\Z", re.IGNORECASE)

# Negation cues before a group: "no", "not", "without", "absence of", "doesn't", "rule out".
_NEG_BEFORE = re.compile(
    r"(?:\b(?:no|not|without|absent|missing|absence\s+of|lack\s+of|lacks|lacking|never|neither|nor|none\s+of|"
    r"free\s+of|rather\s+than|instead\s+of|rules?\s+out|ruled\s+out|ruling\s+out|\w+n't)\b|没有|未见|缺乏|不存在|无)",
    re.IGNORECASE,
)
_NEG_BEFORE_WORDS = 5  # at most this many words between a cue and the group it negates
# A predicate after a group that denies it. Copulas and adverbs may sit in between.
_COPULA = (
    r"(?:(?:is|are|was|were|be|been|seems?|appears?|remains?|looks?|stays?|does|do|did|has|have|had|shows?|"
    r"can|could|may|might|will)\s+)"
)
_ADVERB = (
    r"(?:(?:both|all|also|clearly|entirely|completely|totally|largely|mostly|likely|definitely|still|fully|"
    r"conspicuously|essentially|notably|each)\s+)"
)
_DENIAL = (
    r"(?:absent|missing|inactive|not|cannot|\w+n't|no|none|never|off|negative|false|lacking|未出现|不存在|缺失|"
    r"0(?:\.0+)?(?![\d.])|[✗✘❌×])"
)
_NEG_AFTER = re.compile(rf"^\s*(?:(?:[:|=]|->|=>|→|-)\s*)?{_COPULA}*{_ADVERB}*{_DENIAL}(?!\w)", re.IGNORECASE)
_NOT_DENIED = re.compile(
    rf"^\W*{_COPULA}*(?:not|\w+n't)\s+(?:absent|missing|inactive)\b", re.IGNORECASE
)  # "not absent"
# "AU12 - lip corner puller: absent", "| AU12 | lip corner puller | no |": the value after the last separator.
_FIELD_SEPARATOR = re.compile(r"[:|]")
_VALUE_DENIAL = re.compile(rf"^\s*{_DENIAL}(?!\w)", re.IGNORECASE)
_HEADER_GAP = re.compile(
    r"^[ \t]*(?:(?:present|active|observed|detected|visible|seen|shown|activated)[ \t]*)?(?:AUs?|action\s+units?)?"
    r"[ \t]*[:\-][ \t]*\Z",
    re.IGNORECASE,
)
# How far a predicate reaches back over a group, and a negation forward over it.
_FIELD_VALUE = re.compile(r"^\s*(?:\([^()]*\)\s*)?[:|=]")
_PLURAL = re.compile(r"^\s*(?:are|were|both|all|neither|none)\b", re.IGNORECASE)
_SINGULAR = re.compile(
    r"^\s*(?:is|was|has|does|seems|appears|remains|looks|shows|isn't|wasn't|doesn't)\b", re.IGNORECASE
)
_OWN_PREDICATE = re.compile(r"^\s*(?:is|are|was|were|appears?|seems?|shows?|looks?|remains?)\b", re.IGNORECASE)
_CONJUNCTION = re.compile(r"\b(?:and|or|nor)\b|&", re.IGNORECASE)
_NEW_CLAUSE_GLUE = re.compile(r",\s*and\b", re.IGNORECASE)
_COMBINATION = re.compile(r"^\s*[+/]\s*\Z")  # "AU6+AU12": one combined item

# A group only supposed, not observed: conditionals, expectations and textbook statements.
_HYPOTHETICAL_BEFORE = re.compile(
    r"\b(?:if|unless|whether|would|could|should|might|\w+'d|expects?|expected|expecting|typically|usually|"
    r"normally|generally|prototypically|classically|often|tends?\s+to)\b",
    re.IGNORECASE,
)
_HYPOTHETICAL_BEFORE_WORDS = 6
# A statement about an emotion, not this face: "fear also involves AU1, AU2 and AU4".
_EMOTION_WORD = "|".join(sorted(label_aliases(), key=len, reverse=True))
_PROTOTYPE_BEFORE = re.compile(
    rf"\b(?:{_EMOTION_WORD})\b(?:\s+\w+){{0,2}}?\s+(?:involves?|includes?|requires?|needs?|features?|calls\s+for|"
    r"(?:is|are)\s+(?:characterized|characterised|marked|defined|associated)\s+(?:by|with))\b",
    re.IGNORECASE,
)
_HYPOTHETICAL_AFTER = re.compile(
    r"^\s*(?:would|could|should|might|may)\s+(?:(?:also|typically|usually|normally|then)\s+)?"
    r"(?:be\s+(?:expected|present|visible|seen|needed|required|active|activated|there|involved)|appear|show|occur|"
    r"accompany)\b|^\s*(?:were|was)\s+(?:present|active|visible)\b",
    re.IGNORECASE,
)
_AFTER_WINDOW = 80  # characters looked at after a group for its predicate
_BEFORE_WINDOW = 160  # characters looked at before a group for a negation or a conditional


@dataclass
class Mention:
    start: int
    end: int
    code: int
    bare: bool = False  # a code under an earlier marker: the 2 and 5 of "AUs 1, 2, and 5"
    glue: str = ""  # the text between the previous mention of its group and this one


@dataclass
class AUReading:
    cited: list[int]  # asserted as present somewhere, sorted
    negated: list[int]  # only ever denied, sorted
    hypothetical: list[int]  # only ever supposed ("would show AU12"), sorted


def read_aus(text: str) -> AUReading:
    """Read a (normalised) reasoning text.

    >>> r = read_aus("Brows lowered (AU4+7); AU12: absent. A smile would show AU6.")
    >>> r.cited, r.negated, r.hypothetical
    ([4, 7], [12], [6])
    """
    cited: set[int] = set()
    negated: set[int] = set()
    supposed: set[int] = set()
    groups = _groups(text, mentions(text))
    for i, group in enumerate(groups):
        previous_end = groups[i - 1][-1].end if i else 0
        next_start = groups[i + 1][0].start if i + 1 < len(groups) else len(text)
        # A cue governs only a few words of its own clause: look no further back than that.
        before = text[max(previous_end, group[0].start - _BEFORE_WINDOW) : group[0].start]
        after = text[group[-1].end : min(next_start, group[-1].end + _AFTER_WINDOW)]
        denied: list[Mention] = []
        next_is_near = i + 1 < len(groups) and next_start <= group[-1].end + _AFTER_WINDOW
        if _denied_after(after, ends_at_mention=next_is_near):
            denied = _reached_by_predicate(group, after)
        if _denied_before(before):
            denied = group if denied else _reached_by_negation(group, after)
        if _supposed(before, after):
            supposed.update(m.code for m in group if m not in denied)
        else:
            cited.update(m.code for m in group if m not in denied)
        negated.update(m.code for m in denied)
    return AUReading(sorted(cited), sorted(negated - cited), sorted(supposed - cited - negated))


def mentions(text: str) -> list[Mention]:
    """Every AU mention in order, lists expanded ("AUs 1, 2, and 5" -> 1, 2, 5)."""
    found: list[Mention] = []
    pos = 0
    while (m := _START.search(text, pos)) is not None:
        found.append(Mention(m.start(), m.end(), int(m.group("code"))))
        pos = m.end()
        while (n := _NEXT.match(text, pos)) is not None:
            found.append(Mention(n.end("glue"), n.end(), int(n.group("code")), bare=n.group("prefix") is None))
            pos = n.end()
    return [m for m in found if m.code > 0]


def _groups(text: str, found: list[Mention]) -> list[list[Mention]]:
    """Mentions joined only by list glue ("AU1, AU2 or AU5", "AU6+AU12") form one group."""
    groups: list[list[Mention]] = []
    for mention in found:
        mention.glue = text[groups[-1][-1].end : mention.start] if groups else ""
        if groups and _GROUP_GLUE.match(PARENTHETICAL.sub(" ", mention.glue)):
            groups[-1].append(mention)
        else:
            groups.append([mention])
    return groups


def _reached_by_predicate(group: list[Mention], after: str) -> list[Mention]:
    """The members a denying predicate after the group reaches.

    A field value ("AU1, AU2: absent"), a plural ("... are absent") or a real list without a
    verb (one with a conjunction, or codes under one marker: "AUs 1, 2, and 5 not active")
    reaches them all. A singular verb ("(AU4) and AU12 is absent") or a bare comma between
    clauses ("AU1+AU4, AU20 not detected") reaches only the last item, with the codes combined
    into it by "+" or "/".
    """
    predicate = PARENTHETICAL.sub(" ", after)
    if _FIELD_VALUE.match(after) or _PLURAL.match(predicate):
        return group
    if not _SINGULAR.match(predicate) and any(m.bare or _CONJUNCTION.search(m.glue) for m in group[1:]):
        return group
    k = len(group) - 1
    while k > 0 and _COMBINATION.match(group[k].glue):
        k -= 1
    return group[k:]


def _reached_by_negation(group: list[Mention], after: str) -> list[Mention]:
    """The members a negation before the group reaches.

    A real list (a conjunction, or codes under one marker) is reached as a whole ("no AU1, AU2
    or AU5"), unless a ", and" opens a clause with its own verb ("no AU4, and AU7 is visible").
    A list of bare commas is reached as a whole only where the clause ends with it ("No AU4,
    AU9."); otherwise the comma starts a new clause ("没有AU4，AU12明显"): only the first item.
    """
    predicate = PARENTHETICAL.sub(" ", after)
    if any(m.bare or _CONJUNCTION.search(m.glue) for m in group[1:]):
        if _OWN_PREDICATE.match(predicate):
            for k, mention in enumerate(group[1:], start=1):
                if _NEW_CLAUSE_GLUE.search(mention.glue):
                    return group[:k]
        return group
    if not predicate.strip() or re.match(r"^\s*[.;!?\n。！？；]", predicate):
        return group
    k = 1
    while k < len(group) and _COMBINATION.match(group[k].glue):
        k += 1
    return group[:k]


def _denied_before(before: str) -> bool:
    """A negation cue shortly before the group, in the same clause (the text since the previous group)."""
    cues = list(_NEG_BEFORE.finditer(before))
    if not cues:
        return False
    gap = PARENTHETICAL.sub(" ", before[cues[-1].end() :]).replace("(", " ")
    if _HEADER_GAP.match(gap):  # a heading: "Absent: AU4, AU9", "Not present - AU4"
        return True
    if CLAUSE_BREAK.search(gap) or ":" in gap:
        return False
    return words(gap) <= _NEG_BEFORE_WORDS


def _denied_after(after: str, ends_at_mention: bool) -> bool:
    """A denying predicate after the group: "is absent", ": no", "| no |", "(absent)".

    When the next AU follows in the same clause, a cue in between belongs to that AU
    ("AU12 (not AU14)", "AU12 is not accompanied by AU6"), not to this group.
    """
    window = after
    clause_end = CLAUSE_BREAK.search(window)
    if clause_end is not None:
        window = window[: clause_end.start()]
    elif ends_at_mention:
        return False
    for reading in (window.replace("(", " ").replace(")", " "), PARENTHETICAL.sub(" ", window)):
        if _NOT_DENIED.match(reading):
            return False
        if _NEG_AFTER.match(reading):
            return True
    fields = [f for f in _FIELD_SEPARATOR.split(PARENTHETICAL.sub(" ", window)) if f.strip()]
    # "AU12 - lip corner puller: absent": the value after the last separator
    return len(fields) > 1 and _VALUE_DENIAL.match(fields[-1]) is not None


def _supposed(before: str, after: str) -> bool:
    """A conditional or expectation governs the group: "if AU4 were", "would show AU12", "AU6 would be expected"."""
    cues = list(_HYPOTHETICAL_BEFORE.finditer(before)) + list(_PROTOTYPE_BEFORE.finditer(before))
    cues.sort(key=lambda m: m.end())
    if cues:
        gap = PARENTHETICAL.sub(" ", before[cues[-1].end() :])
        if not CLAUSE_BREAK.search(gap) and words(gap) <= _HYPOTHETICAL_BEFORE_WORDS:
            return True
    return _HYPOTHETICAL_AFTER.match(PARENTHETICAL.sub(" ", after)) is not None
