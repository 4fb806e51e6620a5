"""The face front-end on real pixels."""

import cv2
import numpy as np
import pytest

from emoreason.face.frontend import FaceFrontEnd, FrontEndConfig


@pytest.fixture(scope="module")
def frontend():
    fe = FaceFrontEnd()
    yield fe
    fe.close()


def _present(obs):
    return {a.code for a in obs.present_aus()}


def test_astronaut_one_smiling_face(frontend, astronaut):
    faces = frontend.observe(astronaut)
    assert len(faces) == 1
    face = faces[0]
    assert face.source == "detector"
    x0, y0, x1, y1 = face.box
    assert 150 < x0 < 200 and 60 < y0 < 110 and 250 < x1 < 300 and 160 < y1 < 210  # her face, not the suit
    assert face.landmarks.shape == (478, 3)
    assert 12 in _present(face) and 25 in _present(face)  # smiling with lips apart
    assert max(face.expression_prior, key=face.expression_prior.get) == "happiness"
    assert face.aligned_crop.shape == (224, 224, 3)
    assert abs(face.pose["roll"]) < 10
    assert {a.code for a in face.aus} == {1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 24, 25, 26, 43}
    assert all(0 <= a.intensity <= 5 and 0 <= a.score <= 1 for a in face.aus)


def test_two_faces_sorted_largest_first(frontend, astronaut):
    small = cv2.resize(astronaut, (256, 256))
    canvas = np.zeros((512, 1024, 3), np.uint8)
    canvas[:, :512] = astronaut
    canvas[128:384, 640:896] = small[:, ::-1]
    faces = frontend.observe(canvas)
    assert len(faces) == 2
    assert faces[0].box[0] < 512 < faces[1].box[0]  # the big face first
    area = [(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) for f in faces]
    assert area[0] > area[1]
    assert [f.index for f in faces] == [0, 1]


def test_no_face(frontend, no_face):
    assert frontend.observe(no_face) == []
    assert frontend.observe(np.full((300, 300, 3), 127, np.uint8)) == []


def test_min_face_size_filters_small_faces(astronaut):
    fe = FaceFrontEnd(FrontEndConfig(min_face_size=200))
    try:
        assert fe.observe(astronaut) == []  # her face is ~95 px
    finally:
        fe.close()


def test_tight_48px_crop_in_detect_mode_falls_back(frontend, astronaut_face):
    grey48 = cv2.cvtColor(
        cv2.cvtColor(cv2.resize(astronaut_face, (48, 48), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY),
        cv2.COLOR_GRAY2RGB,
    )
    faces = frontend.observe(grey48)
    assert len(faces) == 1
    assert faces[0].landmarks is not None  # the mesh works on an upscaled, padded 48 px crop
    assert 12 in _present(faces[0])


def test_full_mode_whole_image_is_the_face(frontend, astronaut_face):
    faces = frontend.observe(astronaut_face, face_mode="full")
    assert len(faces) == 1 and faces[0].source == "full"
    h, w = astronaut_face.shape[:2]
    assert faces[0].box == (0.0, 0.0, float(w), float(h))
    assert 12 in _present(faces[0])


def test_rolled_head_measures_the_same_aus(frontend, astronaut):
    """AU measurement happens in a pose-normalised frame: a 20 degree roll changes little."""
    upright = frontend.observe(astronaut)[0]
    m = cv2.getRotationMatrix2D((230, 130), -20, 1.0)
    rolled = frontend.observe(cv2.warpAffine(astronaut, m, (512, 512), borderMode=cv2.BORDER_REFLECT))[0]
    assert 15 < abs(rolled.pose["roll"] - upright.pose["roll"]) < 25
    for code in (12, 25, 6):
        a = next(x for x in upright.aus if x.code == code).intensity
        b = next(x for x in rolled.aus if x.code == code).intensity
        assert abs(a - b) < 1.0, (code, a, b)


def test_landmarks_read_from_the_serialised_list_and_the_slow_path_agrees():
    from mediapipe.framework.formats import landmark_pb2

    from emoreason.face.landmarks import landmark_array

    points = np.random.default_rng(0).random((478, 3)).astype(np.float32)
    plain = landmark_pb2.NormalizedLandmarkList()
    for x, y, z in points:
        plain.landmark.add(x=x, y=y, z=z)
    np.testing.assert_array_equal(landmark_array(plain), points.astype(np.float64))
    with_visibility = landmark_pb2.NormalizedLandmarkList()
    with_visibility.CopyFrom(plain)
    with_visibility.landmark[5].visibility = 0.5  # another record layout: read field by field
    np.testing.assert_array_equal(landmark_array(with_visibility), points.astype(np.float64))


def test_auto_detector_asks_the_short_range_model_only_when_the_full_range_one_finds_nothing(astronaut, no_face):
    from emoreason.face.detect import FaceDetector

    detector = FaceDetector("auto")
    full, short = detector._detectors
    calls = {"full": 0, "short": 0}
    for name, model in (("full", full), ("short", short)):
        process = model.process

        def counted(image, _process=process, _name=name):
            calls[_name] += 1
            return _process(image)

        model.process = counted
    try:
        assert len(detector.detect(astronaut)) == 1  # a photo: the full-range model finds her
        assert calls == {"full": 1, "short": 0}
        assert detector.detect(no_face) == []  # nothing found: the short-range model gets its turn
        assert calls == {"full": 2, "short": 1}
    finally:
        detector.close()


def test_observe_many_equals_observe_and_keeps_a_bad_image_in_its_place(frontend, astronaut, two_faces):
    from emoreason import InputError

    one_by_one = [frontend.observe(img) for img in (astronaut, two_faces)]
    together = frontend.observe_many([astronaut, np.zeros((2, 2, 3), np.uint8), two_faces])
    assert isinstance(together[1], InputError) and "too small" in together[1].reason
    for alone, batched in zip(one_by_one, (together[0], together[2])):
        assert [o.box for o in alone] == [o.box for o in batched]
        for a, b in zip(alone, batched):  # the prior from a batch of 3 faces is the prior from one at a time
            assert a.expression_prior.keys() == b.expression_prior.keys()
            assert all(abs(a.expression_prior[k] - b.expression_prior[k]) < 1e-3 for k in a.expression_prior)
