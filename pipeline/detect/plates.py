"""车牌: finding licence plates (for masking) and reading them (for parking evidence).

Finding: HyperLPR3's y5fu detector (Apache-2.0, ``models/y5fu_640x_sim.onnx``) gives each plate's
four corners and whether it is a single- or double-layer plate. Reading: the corners are
rectified to a flat strip (a double-layer plate's two rows side by side, upper row first) and
read by PP-OCRv4's Chinese text recogniser, the ONNX model that ships inside the
``rapidocr-onnxruntime`` wheel (Apache-2.0; its character list is in the model's metadata), with
a plain CTC decode. The text is then checked against the grammar of mainland plates (province
character, issuing-office letter, five or six characters; I and O are never used, so they are
read as 1 and 0), and the plate colour (blue, green new-energy, yellow) comes from HyperLPR3's
classifier when that model is present.

Reading is recognition of a vehicle, never of a person: faces are only ever masked.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from pipeline.detect.detector import cpu_session
from pipeline.errors import ModelError

MODELS = Path(__file__).resolve().parents[2] / "models"
PLATE_MODEL = MODELS / "y5fu_640x_sim.onnx"
COLOUR_MODEL = MODELS / "litemodel_cls_96x_r1.onnx"
_COLOURS = ("blue", "green", "yellow")
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
# Province, issuing office (A-Z without I/O), then 5 characters (or 6 on new-energy plates),
# the last of which may be 学 (driving school), 警 (police), 挂 (trailer), 港/澳 (cross-border).
PLATE_RE = re.compile(
    rf"^[{PROVINCES}][A-HJ-NP-Z](?:[A-HJ-NP-Z0-9]{{4}}|[A-HJ-NP-Z0-9]{{5}})[A-HJ-NP-Z0-9学警挂港澳]$"
)
_REC_HEIGHT = 48
# A read at a hinted place is taken without a search only this sure (pipeline.rules.parking
# holds a rival plate's read to the same bar).
HINT_CONFIDENCE = 0.9
# Strips are padded on the right to this width (a single-layer strip is 154 wide). PaddleOCR
# pads to 320; the recogniser's cost grows with the width. At 240 the generated-plate benchmark
# reads as well (0.958 of plates >= 80 px exactly, 0.946 at 320: within its noise) in 44 ms a
# read instead of ~55 (benchmarks/plates.py); at 160-192 the provinces read better still but
# Q is read as 0 (the line is mixed as a whole, padding included).
_REC_WIDTH = 240
_DROP = re.compile(r"[\s·•.\-_:：,，'\"]")


def recogniser_model() -> Path:
    """PP-OCRv4 recognition model from the installed ``rapidocr-onnxruntime`` wheel (found
    without importing the package, whose import pulls in its own detector stack)."""
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "plate reading needs the rapidocr-onnxruntime package (pip install "
            "rapidocr-onnxruntime): its wheel ships the PP-OCRv4 recognition model"
        )
    package = Path(next(iter(spec.submodule_search_locations)))
    path = package / "models" / "ch_PP-OCRv4_rec_infer.onnx"
    if not path.is_file():
        raise ModelError(f"{path} not found in the rapidocr-onnxruntime package")
    return path


@dataclass(frozen=True, slots=True)
class PlateSighting:
    """One plate found in an image: corners TL, TR, BR, BL in image pixels."""

    corners: NDArray[np.float32]
    score: float
    double_layer: bool

    @property
    def box(self) -> tuple[float, float, float, float]:
        x, y = self.corners[:, 0], self.corners[:, 1]
        return (float(x.min()), float(y.min()), float(x.max()), float(y.max()))

    @property
    def width_px(self) -> float:
        top = float(np.linalg.norm(self.corners[1] - self.corners[0]))
        bottom = float(np.linalg.norm(self.corners[2] - self.corners[3]))
        return (top + bottom) / 2


@dataclass(frozen=True, slots=True)
class PlateRead:
    """What was read from one plate."""

    text: str
    confidence: float  # mean probability of the characters read (0-1)
    valid: bool  # matches the mainland plate grammar
    colour: str | None  # "blue" | "green" | "yellow" | None (no classifier)
    sighting: PlateSighting


def around(
    region: tuple[float, float, float, float], shape: tuple[int, ...], margin: float
) -> tuple[int, int, int, int]:
    """``region`` (x1, y1, x2, y2) widened by ``margin`` of its size on each side, in whole
    pixels, within an image of ``shape``: (left, top, right, bottom), right/bottom exclusive."""
    h, w = shape[:2]
    x1, y1, x2, y2 = region
    mx, my = margin * (x2 - x1), margin * (y2 - y1)
    return (max(0, int(x1 - mx)), max(0, int(y1 - my)),
            min(w, int(x2 + mx) + 1), min(h, int(y2 + my) + 1))  # fmt: skip


class PlateSource(Protocol):
    """What reads plates for the parking rule (``PlateReader``, or a script in tests)."""

    def read(
        self,
        image: NDArray[np.uint8],
        region: tuple[float, float, float, float] | None = None,
        hint: PlateSighting | None = None,
    ) -> list[PlateRead]: ...


class PlateDetector:
    """y5fu: letterboxed to its square input on black, as HyperLPR3 feeds it."""

    def __init__(self, model: Path = PLATE_MODEL, *, score: float = 0.25, threads: int = 1) -> None:
        if not model.is_file():
            raise ModelError(f"plate model {model} not found")
        self.score = score
        self._session = cpu_session(model, threads)
        shape = self._session.get_inputs()[0].shape
        self._size = int(shape[2]) if isinstance(shape[2], int) else 640

    def detect(self, image: NDArray[np.uint8]) -> list[PlateSighting]:
        size = self._size
        h, w = image.shape[:2]
        r = min(size / w, size / h)
        nw, nh = max(1, round(w * r)), max(1, round(h * r))
        left, top = (size - nw) // 2, (size - nh) // 2
        canvas = np.zeros((size, size, 3), np.uint8)
        canvas[top : top + nh, left : left + nw] = cv2.resize(image, (nw, nh))
        x = canvas[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
        out = self._session.run(None, {self._session.get_inputs()[0].name: x})[0][0]
        out = out[out[:, 4] > self.score]
        if not len(out):
            return []
        score = out[:, 4] * out[:, 13:15].max(axis=1)
        out, score = out[score > self.score], score[score > self.score]
        if not len(out):
            return []
        cx, cy, bw, bh = out[:, 0], out[:, 1], out[:, 2], out[:, 3]
        xywh = np.stack([cx - bw / 2, cy - bh / 2, bw, bh], axis=1)
        keep = np.asarray(
            cv2.dnn.NMSBoxes(xywh.tolist(), score.tolist(), self.score, 0.5), np.int64
        ).reshape(-1)
        found = []
        for i in keep:
            corners = (out[i, 5:13].reshape(4, 2) - [left, top]) / r
            found.append(
                PlateSighting(
                    np.asarray(corners, np.float32),
                    float(score[i]),
                    bool(out[i, 14] > out[i, 13]),
                )
            )
        return found


class PlateReader:
    """Finds plates in a region of an image and reads them."""

    def __init__(
        self,
        detector: PlateDetector | None = None,
        recogniser: Path | None = None,
        colour_model: Path | None = COLOUR_MODEL,
        *,
        threads: int = 1,
    ) -> None:
        self.detector = detector or PlateDetector(threads=threads)
        self._rec = cpu_session(recogniser or recogniser_model(), threads)
        meta = self._rec.get_modelmeta().custom_metadata_map
        if "character" not in meta:
            raise ModelError("the text recogniser carries no character list in its metadata")
        # CTC: index 0 is the blank, then the model's characters, then a space
        self.characters: tuple[str, ...] = ("", *meta["character"].splitlines(), " ")
        index = {c: i for i, c in enumerate(self.characters)}
        missing = [c for c in PROVINCES if c not in index]
        if missing:
            raise ModelError(f"the text recogniser cannot read the provinces {missing}")
        self._province_ids = np.array([index[c] for c in PROVINCES], np.intp)
        self._colour: ort.InferenceSession | None = None
        if colour_model is not None and colour_model.is_file():
            self._colour = cpu_session(colour_model, threads)

    def read(
        self,
        image: NDArray[np.uint8],
        region: tuple[float, float, float, float] | None = None,
        hint: PlateSighting | None = None,
    ) -> list[PlateRead]:
        """Plates inside ``region`` (x1, y1, x2, y2; default the whole image), best first.

        A region is searched as its own image: the detector then sees a small plate larger.
        ``hint``: where a plate was seen before (a parked car looked at again); when the text
        there reads as a plate, surely, that is the answer and the detector is not run (it is
        over half of a read's cost). A car that left, or another in its place, reads
        otherwise and is searched for as usual."""
        if hint is not None:
            text, conf = self.recognise(self.rectify(image, hint))
            if conf >= HINT_CONFIDENCE and PLATE_RE.match(text):
                return [PlateRead(text, conf, True, self._colour_of(image, hint), hint)]
        ox, oy = 0, 0
        crop = image
        if region is not None:
            ox, oy, ex, ey = around(region, image.shape, 0.1)
            if ex - ox < 8 or ey - oy < 8:
                return []
            crop = image[oy:ey, ox:ex]
        reads = []
        for s in self.detector.detect(crop):
            text, conf = self.recognise(self.rectify(crop, s))
            placed = PlateSighting(s.corners + np.array([ox, oy], np.float32), s.score,
                                   s.double_layer)  # fmt: skip
            reads.append(
                PlateRead(text, conf, bool(PLATE_RE.match(text)), self._colour_of(crop, s), placed)
            )
        return sorted(reads, key=lambda r: (r.valid, r.confidence), reverse=True)

    @staticmethod
    def rectify(image: NDArray[np.uint8], s: PlateSighting) -> NDArray[np.uint8]:
        """The plate as a flat strip ``_REC_HEIGHT`` high (two rows side by side if double).

        Plates have a fixed shape (440 × 140 mm single, 440 × 220 mm double layer), so the
        strip takes that shape whatever the corners' perspective: a plate seen at an angle is
        foreshortened, and the recogniser reads squeezed characters badly."""
        ow = round(_REC_HEIGHT * 3.2)
        oh = _REC_HEIGHT * 2 if s.double_layer else _REC_HEIGHT
        dst = np.array([[0, 0], [ow, 0], [ow, oh], [0, oh]], np.float32)
        m = cv2.getPerspectiveTransform(s.corners.astype(np.float32), dst)
        flat = cv2.warpPerspective(image, m, (ow, oh), flags=cv2.INTER_CUBIC,
                                   borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        if not s.double_layer:
            return np.asarray(flat, np.uint8)
        # upper row: province and office letter, narrower and centred; lower row: the rest
        upper = flat[: round(oh * 0.42), round(ow * 0.18) : round(ow * 0.82)]
        lower = flat[round(oh * 0.36) :]
        rows = [
            cv2.resize(r, (max(1, round(r.shape[1] * _REC_HEIGHT / r.shape[0])), _REC_HEIGHT))
            for r in (upper, lower)
        ]
        return np.asarray(np.hstack(rows), np.uint8)

    def recognise(self, strip: NDArray[np.uint8]) -> tuple[str, float]:
        """PP-OCR recognition of one text line (BGR), CTC-decoded and normalised."""
        h, w = strip.shape[:2]
        width = max(_REC_HEIGHT, round(w * _REC_HEIGHT / max(1, h)))
        img = cv2.resize(strip, (width, _REC_HEIGHT)).astype(np.float32)
        # as PaddleOCR feeds it: normalised, then padded on the right (to _REC_WIDTH)
        x = np.zeros((1, 3, _REC_HEIGHT, max(width, _REC_WIDTH)), np.float32)
        x[0, :, :, :width] = ((img / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)
        probs = self._rec.run(None, {self._rec.get_inputs()[0].name: x})[0][0]
        return self.decode(np.asarray(probs, np.float32))

    def decode(self, probs: NDArray[np.float32]) -> tuple[str, float]:
        """CTC decode of (steps, classes) probabilities into plate text and confidence."""
        idx = probs.argmax(axis=1)
        best = probs.max(axis=1)
        chars: list[str] = []
        confs: list[float] = []
        steps: list[int] = []
        prev = -1
        for step, (i, p) in enumerate(zip(idx.tolist(), best.tolist(), strict=True)):
            if i != prev and i != 0:
                chars.append(self.characters[i] if i < len(self.characters) else "")
                confs.append(p)
                steps.append(step)
            prev = i
        if chars and chars[0] not in PROVINCES:
            self._province_first(probs, chars, confs, steps)
        return normalise("".join(chars)), float(np.mean(confs)) if confs else 0.0

    def _province_first(
        self, probs: NDArray[np.float32], chars: list[str], confs: list[float], steps: list[int]
    ) -> None:
        """A plate starts with a province; the small 汉字 is what a distant plate loses first.
        A first character read as another 汉字 (浙 for 湘) or as a Latin letter is replaced by
        the likeliest province at its step, and a plate read without one gets the likeliest
        province of the steps before its first character — whichever of the two gives a text
        of the plate grammar, the likelier province if both do. Its low probability then
        lowers the read's confidence, as it should."""
        at = probs[steps[0], self._province_ids]
        options: list[tuple[float, list[str], list[float]]] = []
        p = float(at.max())
        options.append((p, [PROVINCES[int(at.argmax())], *chars[1:]], [p, *confs[1:]]))
        if chars[0].isascii():
            before = probs[: max(1, steps[0]), :][:, self._province_ids]
            q = float(before.max())
            province = PROVINCES[int(before.max(axis=0).argmax())]
            options.append((q, [province, *chars], [q, *confs]))
        valid = [o for o in options if PLATE_RE.match(normalise("".join(o[1])))]
        if not chars[0].isascii() or valid:
            _, new_chars, new_confs = max(valid or options, key=lambda o: o[0])
            chars[:] = new_chars
            confs[:] = new_confs

    def _colour_of(self, image: NDArray[np.uint8], s: PlateSighting) -> str | None:
        if self._colour is None:
            return None
        dst = np.array([[0, 0], [96, 0], [96, 96], [0, 96]], np.float32)
        m = cv2.getPerspectiveTransform(s.corners.astype(np.float32), dst)
        crop = cv2.warpPerspective(image, m, (96, 96))
        x = crop.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
        p = self._colour.run(None, {self._colour.get_inputs()[0].name: x})[0][0]
        return _COLOURS[int(np.argmax(p))]


def normalise(text: str) -> str:
    """Upper case, separators dropped, and I/O (never on plates) after the province read as
    1/0."""
    t = _DROP.sub("", text).upper()
    if len(t) > 2:
        t = t[:2] + t[2:].replace("O", "0").replace("I", "1")
    return t
