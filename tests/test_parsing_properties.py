"""Property test of the AU reader: random AU sets, written in random phrasings, spellings,
negations and hypotheticals from a small grammar, must read back exactly as asserted."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from emoreason.parsing import find_aus

CODES = [1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 24, 25, 26]


def spell(draw, code: int) -> str:
    """One AU code in one of the spellings real models write."""
    forms = [f"AU{code}", f"AU {code}", f"AU{code:02d}", f"au-{code}", f"ＡＵ{code}", f"AU\u2011{code}",
             f"AU{code}{draw(st.sampled_from('ABCDE'))}", f"AU_{code}", f"**AU{code}**"]  # fmt: skip
    return draw(st.sampled_from(forms))


def join(items: list[str], draw) -> str:
    if len(items) == 1:
        return items[0]
    style = draw(st.sampled_from(["and", "oxford", "or"]))
    if style == "oxford" and len(items) > 2:
        return ", ".join(items[:-1]) + ", and " + items[-1]
    word = "or" if style == "or" else "and"
    return ", ".join(items[:-1]) + f" {word} " + items[-1]


def present(draw, codes: list[int]) -> str:
    many = len(codes) > 1
    if many and draw(st.booleans()):  # one AU marker for the whole list
        bare, commas = join([str(c) for c in codes], draw), ", ".join(map(str, codes))
        forms = [f"AUs {bare} are active", f"Active AUs: {commas}", f"Action Units {bare} are visible"]
        return draw(st.sampled_from([*forms, "AU" + "+".join(map(str, codes))]))
    spelled = join([spell(draw, c) for c in codes], draw)
    verb = "are" if many else "is"
    forms = [f"the face shows {spelled}", f"{spelled} {verb} present", f"we see ({spelled})", f"{spelled}: present"]
    return draw(st.sampled_from([*forms, f"there is no doubt that {spelled} {verb} active"]))


def absent(draw, codes: list[int]) -> str:
    spelled = [spell(draw, c) for c in codes]
    if len(codes) > 1:
        bare, listed = join([str(c) for c in codes], draw), join(spelled, draw)
        head, last = ", ".join(spelled[:-1]), spelled[-1]
        all_of = "both" if len(codes) == 2 else "all"
        forms = [f"AUs {bare} are not active", f"{listed} are {all_of} absent", f"there is no {head} or {last}"]
        return draw(st.sampled_from([*forms, f"Absent: {', '.join(spelled)}", f"without {head} or {last}"]))
    one = spelled[0]
    forms = [f"no {one}", f"{one} is absent", f"{one}: absent", f"{one} (lip movement) is absent", f"| {one} | no |"]
    more = [f"there is no sign of {one}", f"{one} is not present", f"{one} does not appear", f"the absence of {one}"]
    return draw(st.sampled_from(forms + more))


def supposed(draw, codes: list[int]) -> str:
    spelled = join([spell(draw, c) for c in codes], draw)
    forms = [f"a smile would show {spelled}", f"if {spelled} were present, it would differ"]
    more = [f"{spelled} would be expected for another emotion", f"that emotion typically involves {spelled}"]
    return draw(st.sampled_from(forms + more))


@st.composite
def analyses(draw):
    codes = draw(st.permutations(CODES))
    n_present, n_absent, n_supposed = draw(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 2)))
    p = codes[:n_present]
    a = codes[n_present : n_present + n_absent]
    h = codes[n_present + n_absent : n_present + n_absent + n_supposed]
    clauses = []
    for kind, group in (("p", p), ("a", a), ("h", h)):
        chunks = draw(st.sampled_from(["one", "each"])) if len(group) > 1 else "one"
        parts = [group] if chunks == "one" else [[c] for c in group]
        for part in parts:
            if part:
                clauses.append({"p": present, "a": absent, "h": supposed}[kind](draw, list(part)))
    order = draw(st.permutations(clauses))
    separator = draw(st.sampled_from([". ", "; ", "\n", ".\n- "]))
    return separator.join(order) + ".", sorted(p), sorted(a), sorted(h)


@settings(max_examples=400, deadline=None)
@given(analyses())
def test_random_analyses_read_back_exactly(case):
    text, cited, denied, hypothetical = case
    reading = find_aus(text)
    assert (reading.cited, reading.negated, reading.hypothetical) == (cited, denied, hypothetical), text
