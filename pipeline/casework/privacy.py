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

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from pipeline.detect.detector import cpu_session
from pipeline.errors import ModelError

MODELS = Path(__file__).resolve().parents[2] / "models"
FACE_MODEL = MODELS / "face_detection_yunet.onnx"
PLATE_MODEL = MODELS / "y5fu_640x_sim.onnx"


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
        self._plate: ort.InferenceSession | None = None
        if plate_model is not None:
            if not plate_model.is_file():
                raise ModelError(f"plate model {plate_model} not found")
            self._plate = cpu_session(plate_model, threads)
            shape = self._plate.get_inputs()[0].shape
            self._plate_size = int(shape[2]) if isinstance(shape[2], int) else 640

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
        size = self._plate_size
        h, w = image.shape[:2]
        r = min(size / w, size / h)
        nw, nh = round(w * r), round(h * r)
        left, top = (size - nw) // 2, (size - nh) // 2
        canvas = np.zeros((size, size, 3), np.uint8)  # centred letterbox on black (HyperLPR3)
        canvas[top : top + nh, left : left + nw] = cv2.resize(image, (nw, nh))
        x = canvas[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
        out = self._plate.run(None, {self._plate.get_inputs()[0].name: x})[0][0]
        out = out[out[:, 4] > self.plate_score]
        if not len(out):
            return []
        score = out[:, 4] * out[:, 13:15].max(axis=1)
        keep_s = score > self.plate_score
        out, score = out[keep_s], score[keep_s]
        cx, cy, bw, bh = out[:, 0], out[:, 1], out[:, 2], out[:, 3]
        boxes = np.stack([cx - bw / 2 - left, cy - bh / 2 - top, cx + bw / 2 - left,
                          cy + bh / 2 - top], axis=1) / r  # fmt: skip
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
        keep = np.asarray(
            cv2.dnn.NMSBoxes(xywh.tolist(), score.tolist(), self.plate_score, 0.5), np.int64
        ).reshape(-1)
        return [Region("plate", int(b[0]), int(b[1]), int(b[2]), int(b[3]), float(s))
                for b, s in zip(boxes[keep], score[keep], strict=True)]  # fmt: skip

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
