"""The 3-D throw renderer of ``benchmarks/throwing_3d.py`` (``tests.scenes.facade_3d``): a
tree standing between the camera and the façade hides what falls behind its leaves, not what
falls past the gaps between them, and a fall hidden for most of its drop is not counted as
watchable."""

from __future__ import annotations

import dataclasses

import numpy as np

from tests.scenes.facade_3d import (
    CLIPS,
    Compositor,
    Occluder,
    Throw3D,
    ground_z,
    leaves,
    simulate,
    watchable,
)

W, H = 1280, 720
SKY = (235, 235, 235)  # BGR: white-grey, the gaps between leaves
LEAF = (40, 120, 50)  # BGR: green


def _throw(x_m: float) -> Throw3D:
    """A 20 px white-grey object dropped from the office's top-floor sill in column ``x_m``."""
    return Throw3D(
        t=0.0, p0=(x_m, 0.2, 7.0), v0=(0.0, 0.0, 0.0), terminal_mps=30.0, size_m=0.6,
        aspect=1.0, spin_hz=0.0, shade=20, release_floor=3, release_column="C",
        apparent_px=20.0,
    )  # fmt: skip


def _office(frames: list[np.ndarray]) -> Compositor:
    whole = Occluder(((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)), dark_below=80)
    clip = dataclasses.replace(CLIPS[0], occluders=(whole,))
    return Compositor(clip, frames, 30.0)


def test_leaves_are_green_or_dark_inside_the_polygon_only() -> None:
    img = np.full((H, W, 3), SKY, np.uint8)
    img[100:200, 100:200] = LEAF
    img[100:200, 300:400] = (20, 20, 20)  # a branch in the shade
    img[100:200, 900:1000] = LEAF  # green, but outside the tree's polygon
    occ = (Occluder(((0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)), dark_below=80),)
    m = leaves(img, occ)
    assert m[150, 150] and m[150, 350]
    assert not m[150, 950] and not m[400, 150]  # outside; a gap (sky) inside
    crop = leaves(img[90:210, 90:210], occ, 90, 90, (W, H))  # the same, read from a crop
    assert np.array_equal(crop, m[90:210, 90:210])


def test_an_object_behind_the_leaves_is_hidden_and_seen_through_the_gaps() -> None:
    sky = np.full((H, W, 3), SKY, np.uint8)
    th = _throw(3.0)  # the façade's middle column
    path = simulate(th, 2.0, ground_z(CLIPS[0].facade))
    cx = int(_office([sky] * 4).camera.project(np.array([[3.0, 0.2, 7.0]]))[0, 0])
    # a tree whose leaves reach just past the object's column: all of it behind them
    tree = sky.copy()
    tree[:, : cx + 60] = LEAF
    img = tree.copy()
    _office([tree] * 4).draw(img, th, path, 0.3)
    assert np.array_equal(img, tree)
    # the same tree drawn over (this renderer's old way): the object shows on the leaves
    img = tree.copy()
    over = _office([tree] * 4)
    Compositor(over.clip, [tree] * 4, 30.0, occlusion=False).draw(img, th, path, 0.3)
    assert not np.array_equal(img, tree)
    # the tree's polygon, but sky there (a gap between its leaves): the object is drawn
    img = sky.copy()
    _office([sky] * 4).draw(img, th, path, 0.3)
    assert not np.array_equal(img, sky)


def test_a_fall_behind_a_tree_is_not_watchable() -> None:
    clear = np.full((H, W, 3), SKY, np.uint8)
    tree = np.full((H, W, 3), LEAF, np.uint8)  # leaves over the whole façade
    th = _throw(3.0)
    assert watchable(th, _office([clear] * 4), W, H)["watchable"]
    seen = watchable(th, _office([tree] * 4), W, H)
    assert not seen["watchable"] and seen["seen_drop_m"] == 0.0


def test_a_night_camera_is_as_noisy_as_its_electrons_and_smooths_only_what_stands_still() -> None:
    from tests.media import LowLight

    grey = np.full((200, 200, 3), 118, np.uint8)
    # no noise reduction: mid-grey gathers 100 electrons, so its noise is sqrt(100 + 9) of
    # them, shown at 0.8 of the day's mid-grey; through the gamma, grey levels of ~0.45 × that
    plain = LowLight(100, seed=1, dnr=0.0)
    frames = [plain(grey.copy())[:, :, 0].astype(np.float64) for _ in range(2)]
    mean, noise = float(np.mean(frames[1])), float(np.std(frames[1]))
    linear = 0.8**2.2 * (118 / 255) ** 2.2  # what mid-grey is shown as, linear
    want = 255 / 2.2 * linear ** (1 / 2.2) * (109**0.5 / 100)  # d(shown)/d(linear) x noise
    assert abs(mean - 0.8 * 118) < 1.5 and abs(noise - want) < 0.1 * want
    # noise reduction: a still picture settles to less noise; a bright object moving over it
    # keeps its full contrast
    dnr = LowLight(100, seed=1)
    for i in range(12):
        img = grey.copy()
        img[10 + 15 * i : 20 + 15 * i, 95:105] = 250
        out = dnr(img)[:, :, 0].astype(np.float64)
    assert float(np.std(out[:, :60])) < 0.7 * noise
    obj = out[10 + 15 * 11 : 20 + 15 * 11, 95:105]
    bright = float(LowLight(100, seed=2)(np.full_like(grey, 250))[:, :, 0].mean())
    assert float(np.mean(obj)) > 0.95 * bright
