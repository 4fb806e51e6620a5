"""The output parser on what real VLMs write. One case per row, each with the reason it is there."""

import pytest

from emoreason.parsing import find_aus, parse_output

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
    # doubled answer blocks that disagree: a hedge, no answer
    ("<think>AU12</think><answer>happiness</answer><answer>surprise</answer>", None, [12], [], False, False),
    # extra text around the tags
    (
        "Sure! Here is my analysis.\n<think>AU9 and AU10.</think>\n<answer>disgust</answer>\nHope this helps.",
        "disgust",
        [9, 10],
        [],
        False,
        True,
    ),
    # several labels in one answer without a commitment: no answer
    ("<think>AU1 AU2 AU5</think><answer>surprise or fear</answer>", None, [1, 2, 5], [], True, False),
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


# ----------------------------------------------------------------- AU scope, by category
# (reasoning text, AUs cited as present, AUs denied). Each category is one way real VLM
# text asserts or denies an AU; every row was a wrong reward with a pattern-based parser.
AU_CASES = {
    "negation after the AU": [
        ("AU12: absent.", [], [12]),
        ("AU12 and AU6 are both absent.", [], [6, 12]),
        ("AU4 (brow lowerer) is absent, the lids tighten (AU7).", [7], [4]),
        ("The brows are level (AU4 not present).", [], [4]),
        ("AUs 1, 2, and 5 are not active; the jaw drops (AU26).", [26], [1, 2, 5]),
        ("- AU12 (lip corner puller): absent\n- AU6 (cheek raiser): present", [6], [12]),
        ("AU12 - lip corner puller: not observed", [], [12]),
        ("| AU12 | lip corner puller | no |\n| AU6 | cheek raiser | yes |", [6], [12]),
        ("AU12 | no", [], [12]),
        ("AU4: 0\nAU7: 0.6", [7], [4]),
        ("AU9 does not appear, but AU10 does.", [10], [9]),
        ("AU15 isn't visible; AU17 raises the chin.", [17], [15]),
        ("AU20 could not be detected.", [], [20]),
        ("AU1 and AU2 absent, AU5 strong.", [5], [1, 2]),
        ("AU1+AU4, AU20 not detected.", [1, 4], [20]),
        ("The brows are lowered (AU4) and AU12 is absent.", [4], [12]),
        ("AU12 is not absent: the corners rise.", [12], []),
        ("AU26 → absent", [], [26]),
        ("AU12 ✗, AU6 ✓", [6], [12]),
        (
            "1. **AU1 (Inner Brow Raiser)**: Not present.\n2. **AU4 (Brow Lowerer)**: Present, drawn together.",
            [4],
            [1],
        ),
        ("Key AUs:\n- AU6: yes\n- AU12: yes\n- AU4: no", [6, 12], [4]),
    ],
    "negation before the AU": [
        ("No AU4, no AU9.", [], [4, 9]),
        ("Without AU1, AU2 or AU5, the jaw drop (AU26) alone is weak.", [26], [1, 2, 5]),
        ("Neither AU1 nor AU2 is active.", [], [1, 2]),
        ("The face lacks AU4.", [], [4]),
        ("without the lip corner depressor (AU15)", [], [15]),
        ("Absent: AU4, AU9, AU15", [], [4, 9, 15]),
        ("Absent AUs: 4, 9", [], [4, 9]),
        ("Not present: AU23", [], [23]),
        ("I can't see AU9 here.", [], [9]),
        ("There's no AU4, and AU7 is visible.", [7], [4]),
    ],
    "negation that must not reach too far": [
        ("The absence of AU6 suggests a posed smile (AU12).", [12], [6]),
        ("There is no doubt that AU12 is active.", [12], []),
        ("Not only AU6 but also AU12 are active.", [6, 12], []),
        ("No frown, but the corners rise (AU12).", [12], []),
        ("There is no tension and the lip corners rise (AU12).", [12], []),
        ("It is not a frown at all since the lip corners rise (AU12).", [12], []),
        ("AU12 is not accompanied by AU6.", [12], [6]),
        ("A smile (AU12), not a grimace (AU20).", [12], [20]),
        ("AU12 (not AU14) lifts the corners.", [12], [14]),
        ("There is no AU4; the brows rise (AU1+AU2).", [1, 2], [4]),
    ],
    "hypotheticals": [
        ("A smile would show AU12; the mouth is at rest.", [], []),
        ("If AU4 were present, this would be anger; the brows rise instead (AU1).", [1], []),
        ("A genuine smile would also involve AU6, but only AU12 is visible.", [12], []),
        ("Happiness typically involves AU6 and AU12; here the lips part (AU25).", [25], []),
        ("AU12 would be expected for happiness, yet the lips press (AU24).", [24], []),
        ("I'd expect AU9 in disgust; the nose is smooth.", [], []),
        ("AU17 might be present, hard to say; AU4 is clear.", [4], []),
        ("The brows rise (AU1), although fear also involves AU4 and AU20.", [1], []),
        ("While AU6 would typically accompany a smile, only AU12 shows.", [12], []),
    ],
    "spellings": [
        ("The mouth opens (AU25+26).", [25, 26], []),
        ("Brows: AU1+2+4.", [1, 2, 4], []),
        ("Active AUs: 6, 12, 25", [6, 12, 25], []),
        ("Action Units 6 and 12 are active.", [6, 12], []),
        ("Action Unit 12 pulls the corners.", [12], []),
        ("AU 6, 12 and 25 are on.", [6, 12, 25], []),
        ("AUs 1, 2, and 5 are raised.", [1, 2, 5], []),
        ("ＡＵ１２ is strong.", [12], []),
        ("The corners rise (AU‑12).", [12], []),
        ("A one-sided dimpler (R14) and a corner pull (L12).", [12, 14], []),
        ("AU12E and AU6C: a strong smile.", [6, 12], []),
        ("在这张脸上，AU6和AU12最为明显。", [6, 12], []),
        ("AU06, au 4, AU-7 and AU_23", [4, 6, 7, 23], []),
        ("**AU12** (lip corner puller) is *strong*.", [12], []),
        ("AU1+2+5B+26 form the surprise pattern.", [1, 2, 5, 26], []),
        ("AU L14 is visible.", [14], []),
        ("Intensity: AU12 at 0.8, AU6 = 2.5", [6, 12], []),
    ],
    "combinations of the above": [
        ("AUs 6 and 12 are present, AU4 is absent, and a frown would need AU15.", [6, 12], [4]),
        ("Active AUs: 4, 7, 23. Absent: AU12, AU6.", [4, 7, 23], [6, 12]),
        ("没有AU4，AU12明显。", [12], [4]),
        ("AU25+26 present; AUs 1, 2 are not.", [25, 26], [1, 2]),
    ],
    "not AU codes": [
        ("About 12 degrees of roll, AU100 is no code, AU17 raises the chin.", [17], []),
        ("The face is 48 px wide and scores 0.8 overall.", [], []),
        ("AU activity is low overall.", [], []),
    ],
}


@pytest.mark.parametrize(
    "text,cited,denied",
    [pytest.param(*case, id=f"{category}: {case[0][:40]}") for category, cases in AU_CASES.items() for case in cases],
)
def test_au_scope(text, cited, denied):
    reading = find_aus(text)
    assert (reading.cited, reading.negated) == (cited, denied)


def test_hypothetical_aus_are_reported_apart():
    reading = find_aus("A smile would show AU12; if AU4 were present it would be anger. AU25 is present.")
    assert (reading.cited, reading.negated, reading.hypothetical) == ([25], [], [4, 12])


# ----------------------------------------------------------- the committed answer, by category
EMOTION_CASES = {
    "answers outside tags": [
        ("The answer is: Sad", "sadness"),
        ("Final answer - disgust", "disgust"),
        ("Final answer — disgust", "disgust"),
        ("I think the emotion is happiness.", "happiness"),
        ("Answer: happiness", "happiness"),
        ("happiness", "happiness"),
        ("Happy.", "happiness"),
        ("The brows rise (AU1+AU2) and the jaw drops (AU26).\n\nEmotion: surprise", "surprise"),
        ("**Emotion:** fearful", "fear"),
        ("The expression shown is anger.", "anger"),
        ("<think>AU12 and AU6, it is clearly a smile", None),  # cut off before any answer
    ],
    "hedged and negated answers": [
        ("<answer>Surprise or fear — most likely fear.</answer>", "fear"),
        ("<answer>I don't think it's anger; it's contempt.</answer>", "contempt"),
        ("<answer>surprise or fear</answer>", None),
        ("<answer>surprise/fear</answer>", None),
        ("<answer>Fear rather than surprise.</answer>", "fear"),
        ("<answer>Not anger but contempt.</answer>", "contempt"),
        ("<answer>anger, not contempt</answer>", "anger"),
        ("<answer>More likely sadness than fear.</answer>", "sadness"),
        ("<answer>Happiness with a hint of surprise.</answer>", "happiness"),
        ("<answer>happiness 0.8, surprise 0.2</answer>", "happiness"),
        ("<answer>Either anger or disgust.</answer>", None),
        ("<answer>The person is not happy.</answer>", None),
        ("<answer>Surprise is ruled out; fear.</answer>", "fear"),
        ("<answer>Happy/joyful</answer>", "happiness"),  # two words, one label
        ("<answer>fear</answer><answer>fear</answer>", "fear"),
        ("<answer>fear</answer><answer>anger</answer>", None),
    ],
    "other languages": [
        ("<answer>愤怒</answer>", "anger"),
        ("<answer>colère</answer>", "anger"),
        ("<answer>Tristeza.</answer>", "sadness"),
        ("<answer>Angst</answer>", "fear"),
        ("<answer>我认为是愤怒</answer>", None),  # a sentence, not a single label word
        ("<answer>C'est de la colère</answer>", None),
    ],
}


@pytest.mark.parametrize(
    "text,label",
    [
        pytest.param(*case, id=f"{category}: {case[0][:40]}")
        for category, cases in EMOTION_CASES.items()
        for case in cases
    ],
)
def test_committed_answer(text, label):
    assert parse_output(text).emotion == label


def test_eval_reward_and_serving_agree_on_the_committed_label():
    """The served answer (to_face_analysis, which eval's rows also come from) and the lenient
    emotion reward both read the label that `committed_label` reads, on every case above."""
    from emoreason.reasoning.vlm import FaceRequest, Generation, to_face_analysis
    from emoreason.rewards import emotion_score
    from emoreason.types import FaceObservation

    obs = FaceObservation(index=0, box=(0, 0, 1, 1), detection_score=1.0, source="full")
    request = FaceRequest(0, obs, [], None, None)  # type: ignore[arg-type]
    for category, cases in EMOTION_CASES.items():
        for text, label in cases:
            served = to_face_analysis(request, Generation(text)).emotion
            rewarded = [g for g in ("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger",
                                    "contempt") if emotion_score(text, g) == 1.0]  # fmt: skip
            assert served == label and rewarded == ([label] if label else []), (category, text)
