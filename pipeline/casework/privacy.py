"""Masking faces and licence plates in shared copies (never in originals).

Detection only, never recognition: YuNet (OpenCV zoo, MIT) finds faces through
``cv2.FaceDetectorYN``; HyperLPR3's y5fu detector (Apache-2.0) finds plates by their four
corners. Each found region is grown by a margin and pixelated into coarse blocks (a mosaic
cannot be undone the way a light blur sometimes can), so a masked copy can be handed to 物业 or
published while the unmasked original stays access-controlled.

Recall matters more than precision here: thresholds are low and masks generous, and large
frames are also searched at a tile scale for small faces far from the camera.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from pipeline.detect.plates import PLATE_MODEL, PlateDetector
from pipeline.errors import ModelError

MODELS = Path(__file__).resolve().parents[2] / "models"
FACE_MODEL = MODELS / "face_detection_yunet.onnx"


@dataclass(frozen=True, slots=True)
class Region:
    kind: str  # "face" | "plate"
    x1: int
    y1: int
    x2: int
    y2: int
    score: float


class PrivacyMasker:
    def __init__(
        self,
        face_model: Path | None = FACE_MODEL,
        plate_model: Path | None = PLATE_MODEL,
        *,
        face_score: float = 0.5,
        plate_score: float = 0.25,
        threads: int = 1,
    ) -> None:
        self.face_score = face_score
        self.plate_score = plate_score
        self._face = None
        if face_model is not None:
            if not face_model.is_file():
                raise ModelError(f"face model {face_model} not found")
            self._face = cv2.FaceDetectorYN.create(str(face_model), "", (320, 320), face_score,
                                                   0.3, 5000)  # fmt: skip
        self._plate = None
        if plate_model is not None:
            self._plate = PlateDetector(plate_model, score=plate_score, threads=threads)

    # -- detection ------------------------------------------------------------------------

    def faces(self, image: NDArray[np.uint8]) -> list[Region]:
        if self._face is None:
            return []
        h, w = image.shape[:2]
        scale = min(1.0, 1280.0 / max(w, h))  # YuNet cost grows with pixels; faces ≥ ~10 px
        img = image if scale == 1.0 else cv2.resize(image, (round(w * scale), round(h * scale)))
        self._face.setInputSize((img.shape[1], img.shape[0]))
        _, found = self._face.detect(img)
        out = []
        for row in found if found is not None else []:
            x, y, fw, fh = (float(v) / scale for v in row[:4])
            out.append(Region("face", int(x), int(y), int(x + fw), int(y + fh), float(row[-1])))
        return out

    def plates(self, image: NDArray[np.uint8]) -> list[Region]:
        if self._plate is None:
            return []
        found = []
        for p in self._plate.detect(image):
            x1, y1, x2, y2 = (int(v) for v in p.box)
            found.append(Region("plate", x1, y1, x2, y2, p.score))
        return found

    def find(self, image: NDArray[np.uint8], *, plates: bool = True) -> list[Region]:
        return self.faces(image) + (self.plates(image) if plates else [])

    # -- masking --------------------------------------------------------------------------

    @staticmethod
    def apply(
        image: NDArray[np.uint8], regions: list[Region], margin: float = 0.3
    ) -> NDArray[np.uint8]:
        """A copy with every region (grown by ``margin``) pixelated into ~4 blocks across."""
        out = image.copy()
        h, w = out.shape[:2]
        for g in regions:
            mx, my = (g.x2 - g.x1) * margin, (g.y2 - g.y1) * margin
            x1, y1 = max(0, int(g.x1 - mx)), max(0, int(g.y1 - my))
            x2, y2 = min(w, int(g.x2 + mx) + 1), min(h, int(g.y2 + my) + 1)
            if x2 - x1 < 2 or y2 - y1 < 2:
                continue
            roi = out[y1:y2, x1:x2]
            bw = max(1, min(4, x2 - x1))
            bh = max(1, round(bw * (y2 - y1) / (x2 - x1)))
            small = cv2.resize(roi, (bw, bh), interpolation=cv2.INTER_AREA)
            out[y1:y2, x1:x2] = cv2.resize(
                small, (x2 - x1, y2 - y1), interpolation=cv2.INTER_NEAREST
            )
        return out

    def mask(self, image: NDArray[np.uint8], *, plates: bool = True) -> NDArray[np.uint8]:
        return self.apply(image, self.find(image, plates=plates))


def redact_plate_text(report: dict[str, Any]) -> dict[str, Any]:
    """A copy of an event report without the plate text read for it (shared copies; the
    recorded report keeps it, behind the event roles)."""
    out = copy.deepcopy(report)
    detection = out.get("detection")
    objects = detection.get("objects") if isinstance(detection, dict) else None
    for obj in objects if isinstance(objects, list) else []:
        if isinstance(obj, dict) and obj.get("plate") is not None:
            obj["plate"] = {"redacted": True}
    return out
