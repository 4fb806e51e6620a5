import pytest

from emoreason.facs import (
    AU_CATALOGUE,
    AU_PROTOCOLS,
    DETECTED_AUS,
    EMOTION_PROTOTYPES,
    parse_au_code,
    supported_emotions,
)
from emoreason.labels import EMOTIONS, normalize_label


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("happy", "happiness"),  # adjective form used by FER2013 / AffectNet folders
        ("Happiness", "happiness"),  # canonical, any case
        ("joy", "happiness"),  # synonym models write
        ("angry", "anger"),
        ("Surprised!", "surprise"),  # punctuation around the word
        ("fearful", "fear"),
        ("disgusted", "disgust"),
        ("sad", "sadness"),
        ("contemptuous", "contempt"),
        ("neutral", "neutral"),
        ("boredom", None),  # not one of the 8
        ("", None),
        (None, None),
    ],
)
def test_normalize_label(raw, expected):
    assert normalize_label(raw) == expected


def test_catalogue_covers_every_protocol():
    union = set().union(*AU_PROTOCOLS.values())
    assert union == set(DETECTED_AUS) == set(AU_CATALOGUE)
    assert AU_CATALOGUE[12].name == "lip corner puller"


@pytest.mark.parametrize("raw, code", [(12, 12), ("12", 12), ("AU12", 12), ("au 6", 6), ("AU06", 6)])
def test_parse_au_code(raw, code):
    assert parse_au_code(raw) == code


def test_parse_au_code_rejects_garbage():
    with pytest.raises(ValueError, match="not an AU code"):
        parse_au_code("smile")


def test_prototypes_use_known_aus_and_labels():
    for emotion, proto in EMOTION_PROTOTYPES.items():
        assert emotion in EMOTIONS
        for code in proto.core + proto.supporting + proto.conflicting:
            assert code in AU_CATALOGUE, (emotion, code)
        assert not set(proto.core) & set(proto.conflicting)


@pytest.mark.parametrize(
    "aus, expected_in, expected_out",
    [
        ({6, 12}, "happiness", "sadness"),  # Duchenne smile
        ({1, 2, 5, 26}, "surprise", "anger"),
        ({4, 7, 23}, "anger", "happiness"),
        ({9, 10}, "disgust", "surprise"),
        (set(), "neutral", "happiness"),  # nothing moves
        ({25}, "neutral", "surprise"),  # parted lips alone define no emotion
    ],
)
def test_supported_emotions(aus, expected_in, expected_out):
    got = supported_emotions(aus)
    assert expected_in in got and expected_out not in got
