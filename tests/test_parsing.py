"""The output parser on what real VLMs write. One case per row, each with the reason it is there."""

import pytest

from emoreason.parsing import parse_output

# (text, emotion, cited AUs, negated AUs, format_valid, label_valid)
CASES = [
    # the canonical Facial-R1 / FEA-20K format
    (
        "<think>The cheeks are raised (AU6) and the lip corners pulled up (AU12).</think>\n<answer>happiness</answer>",
        "happiness",
        [6, 12],
        [],
        True,
        True,
    ),
    # synonyms and case in the answer
    ("<think>(AU12)</think><answer>Happy</answer>", "happiness", [12], [], True, True),
    ("<think>(AU12)</think><answer>JOY</answer>", "happiness", [12], [], True, True),
    ("<think>AU4 AU7</think><answer> Angry. </answer>", "anger", [4, 7], [], True, True),
    # upper-case tags: readable, but not Facial-R1's exact format
    ("<THINK>Brows lowered (AU4).</THINK><ANSWER>anger</ANSWER>", "anger", [4], [], False, True),
    # spacing variants of AU codes, zero-padded codes, hyphens
    ("<think>AU 1, AU02 and au-5 are up.</think><answer>surprise</answer>", "surprise", [1, 2, 5], [], True, True),
    # combined codes in one parenthesis
    ("<think>A Duchenne smile (AU6+AU12).</think><answer>happiness</answer>", "happiness", [6, 12], [], True, True),
    # "AUs 6 and 12" lists
    ("<think>AUs 6 and 12 are active.</think><answer>happiness</answer>", "happiness", [6, 12], [], True, True),
    # negations of several shapes must not count as cited
    ("<think>Lip corners up (AU12), no AU4.</think><answer>happiness</answer>", "happiness", [12], [4], True, True),
    ("<think>AU12 without AU6: a polite smile.</think><answer>happiness</answer>", "happiness", [12], [6], True, True),
    ("<think>AU9 is absent, AU4 is strong.</think><answer>anger</answer>", "anger", [4], [9], True, True),
    ("<think>AU15 (absent); AU1 and AU4 raised.</think><answer>sadness</answer>", "sadness", [1, 4], [15], True, True),
    ("<think>AU1+AU4, AU20 not detected.</think><answer>sadness</answer>", "sadness", [1, 4], [20], True, True),
    (
        "<think>There is no sign of AU12 or AU6; AU15 pulls down.</think><answer>sad</answer>",
        "sadness",
        [15],
        [6, 12],
        True,
        True,
    ),
    (
        "<think>Without AU1, AU2 or AU5, the jaw drop (AU26) alone is weak.</think><answer>neutral</answer>",
        "neutral",
        [26],
        [1, 2, 5],
        True,
        True,
    ),
    (
        "<think>The brows are not raised (AU1), the lips part (AU25).</think><answer>neutral</answer>",
        "neutral",
        [25],
        [1],
        True,
        True,
    ),
    (
        "<think>The face lacks AU4. The lips part (AU25).</think><answer>neutral</answer>",
        "neutral",
        [25],
        [4],
        True,
        True,
    ),
    (
        "<think>The absence of AU4 and the raised corners (AU12) say joy.</think><answer>happiness</answer>",
        "happiness",
        [12],
        [4],
        True,
        True,
    ),
    # a negation does not reach past a clause break
    (
        "<think>No frown, but the corners rise (AU12).</think><answer>happiness</answer>",
        "happiness",
        [12],
        [],
        True,
        True,
    ),
    (
        "<think>There is no tension and the lip corners rise (AU12).</think><answer>happiness</answer>",
        "happiness",
        [12],
        [],
        True,
        True,
    ),
    # "not" far before the mention does not negate it
    (
        "<think>It is not a frown at all since the lip corners rise (AU12).</think><answer>happiness</answer>",
        "happiness",
        [12],
        [],
        True,
        True,
    ),
    # an AU both affirmed and negated counts as cited
    (
        "<think>AU6 is present. Is AU6 absent? No, AU6 shows.</think><answer>happiness</answer>",
        "happiness",
        [6],
        [],
        True,
        True,
    ),
    # missing closing think tag
    (
        "<think>Brows up (AU1, AU2), jaw dropped (AU26).<answer>surprise</answer>",
        "surprise",
        [1, 2, 26],
        [],
        False,
        True,
    ),
    # missing opening think tag
    ("Brows up (AU1+AU2).</think><answer>surprise</answer>", "surprise", [1, 2], [], False, True),
    # missing closing answer tag (generation cut at max tokens)
    ("<think>AU4 AU5 AU7</think><answer>anger", "anger", [4, 5, 7], [], False, True),
    # doubled answer blocks that agree
    ("<think>AU12</think><answer>happiness</answer><answer>happiness</answer>", "happiness", [12], [], False, True),
    # doubled answer blocks that disagree: the last one is the answer, but it is not a valid label
    ("<think>AU12</think><answer>happiness</answer><answer>surprise</answer>", "surprise", [12], [], False, False),
    # extra text around the tags
    (
        "Sure! Here is my analysis.\n<think>AU9 and AU10.</think>\n<answer>disgust</answer>\nHope this helps.",
        "disgust",
        [9, 10],
        [],
        False,
        True,
    ),
    # several labels in one answer: not a valid single label
    ("<think>AU1 AU2 AU5</think><answer>surprise or fear</answer>", "surprise", [1, 2, 5], [], True, False),
    # a negated label inside the answer is skipped
    ("<think>AU4 AU7 AU23</think><answer>not fear, anger</answer>", "anger", [4, 7, 23], [], True, True),
    # answer in a sentence
    ("<think>AU14 unilateral.</think><answer>The emotion is contempt.</answer>", "contempt", [14], [], True, True),
    # no tags at all: an "Answer:" line is still read, the format is invalid
    ("The brows are lowered (AU4) and AU12 is absent.\nAnswer: angry", "anger", [4], [12], False, True),
    ("**Emotion:** fearful", "fear", [], [], False, True),
    # an answer that is no emotion
    ("<think>AU25</think><answer>boredom</answer>", None, [25], [], True, False),
    # empty output
    ("", None, [], [], False, False),
    # AU mentions inside the answer are not reasoning
    ("<think>AU12.</think><answer>happiness (AU6)</answer>", "happiness", [12], [], True, True),
    # a number that is not an AU code is ignored; AU with 3 digits is not an AU
    (
        "<think>About 12 degrees of roll, AU100 is no code, AU17 raises the chin.</think><answer>sadness</answer>",
        "sadness",
        [17],
        [],
        True,
        True,
    ),
    # contractions negate
    (
        "<think>The nose doesn't wrinkle (AU9); the lid tightens (AU7).</think><answer>anger</answer>",
        "anger",
        [7],
        [9],
        True,
        True,
    ),
]


@pytest.mark.parametrize("text,emotion,aus,negated,format_valid,label_valid", CASES)
def test_parse_output(text, emotion, aus, negated, format_valid, label_valid):
    p = parse_output(text)
    assert (p.emotion, p.aus, p.negated_aus, p.format_valid, p.label_valid) == (
        emotion,
        aus,
        negated,
        format_valid,
        label_valid,
    )


def test_label_set_restricts_validity():
    text = "<think>AU14</think><answer>contempt</answer>"
    assert parse_output(text, labels=["anger", "contempt"]).label_valid
    # RAF-DB has no contempt: the answer is read but is not a valid label for the benchmark
    p = parse_output(text, labels=["anger", "happiness", "neutral"])
    assert p.emotion == "contempt" and not p.label_valid


def test_think_text_is_returned_without_tags():
    p = parse_output("<think> The brows rise (AU1). </think><answer>surprise</answer>")
    assert p.think == "The brows rise (AU1)." and p.answer == "surprise"
