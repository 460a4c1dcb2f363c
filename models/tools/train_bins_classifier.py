"""Build models/bins_overflow.onnx: "garbage at a container" probability for an image.

The public garbage images in ``shared/data/bins`` (Roboflow "Garbage Detection v1", CC BY 4.0)
carry our image-level label: overflow = garbage piled or spilled at a visible bin/container, no
= rubbish without a container (dumped, landfill, close-ups). Fifty images are far too few to
train a network, so the classifier is a logistic regression on features of the shipped COCO
detector (YOLOX-nano backbone and neck, global mean and max pooled: 640 numbers), and the
published ONNX graph is that backbone plus the regression: one file, one session.run.

Accuracy is estimated by 5-fold cross-validation repeated 5 times (never on training images);
the final model is then fitted on all 50 images.

    .venv/bin/python models/tools/train_bins_classifier.py   # needs `onnx` (dev extra)
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from pipeline.detect.detector import letterbox, to_tensor  # noqa: E402

DATA = REPO.parent / "shared" / "data"
BACKBONE = REPO / "models" / "yolox_nano.onnx"
OUT = REPO / "models" / "bins_overflow.onnx"
FEATURES = ["881", "1032", "1019"]  # dark5 (128×13²), neck P3 (64×52²), neck P5 (128×13²)
LAMBDA = 30.0


def feature_model() -> onnx.ModelProto:
    model = onnx.load(str(BACKBONE))
    inferred = onnx.shape_inference.infer_shapes(model)
    vis = {vi.name: vi for vi in inferred.graph.value_info}
    extractor = onnx.utils.Extractor(inferred)
    sub = extractor.extract_model(["images"], FEATURES)
    del sub.graph.output[:]
    sub.graph.output.extend([vis[f] for f in FEATURES])
    return sub


def pooled_graph(
    sub: onnx.ModelProto, mu: np.ndarray, sd: np.ndarray, w: np.ndarray, b: float
) -> onnx.ModelProto:
    g = sub.graph
    pooled = []
    for f in FEATURES:
        for op in ("ReduceMean", "ReduceMax"):
            name = f"{f}_{op}"
            g.node.append(helper.make_node(op, [f], [name + "_4d"], axes=[2, 3], keepdims=1))
            g.node.append(helper.make_node("Flatten", [name + "_4d"], [name], axis=1))
            pooled.append(name)
    g.node.append(helper.make_node("Concat", pooled, ["features"], axis=1))
    g.initializer.extend([
        numpy_helper.from_array(mu.astype(np.float32)[None], "feat_mean"),
        numpy_helper.from_array(sd.astype(np.float32)[None], "feat_std"),
        numpy_helper.from_array(w.astype(np.float32)[:, None], "weights"),
        numpy_helper.from_array(np.array([[b]], np.float32), "bias"),
    ])  # fmt: skip
    g.node.extend([
        helper.make_node("Sub", ["features", "feat_mean"], ["centred"]),
        helper.make_node("Div", ["centred", "feat_std"], ["standard"]),
        helper.make_node("MatMul", ["standard", "weights"], ["logit_w"]),
        helper.make_node("Add", ["logit_w", "bias"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["overflow_prob"]),
    ])  # fmt: skip
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("overflow_prob", TensorProto.FLOAT, [1, 1]))
    sub.producer_name = "gridsight models/tools/train_bins_classifier.py"
    return sub


def fit(
    x: np.ndarray, y: np.ndarray, lam: float = LAMBDA
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """L2 logistic regression by gradient descent on standardised features (deterministic)."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = (x - mu) / sd
    w, b = np.zeros(z.shape[1]), 0.0
    for _ in range(3000):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        w -= 0.1 * (z.T @ (p - y) / len(y) + lam * w / len(y))
        b -= 0.1 * float((p - y).mean())
    return mu, sd, w, b


def predict(model: tuple[np.ndarray, np.ndarray, np.ndarray, float], x: np.ndarray) -> np.ndarray:
    mu, sd, w, b = model
    prob: np.ndarray = 1 / (1 + np.exp(-(((x - mu) / sd) @ w + b)))
    return prob


def dataset() -> tuple[np.ndarray, np.ndarray, list[str]]:
    ann = json.loads((DATA / "ANNOTATIONS.json").read_text())["bins"]["images"]
    sub = feature_model()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(
        sub.SerializeToString(), opts, providers=["CPUExecutionProvider"]
    )
    xs, ys, names = [], [], []
    for item in ann:
        img = cv2.imread(str(DATA / item["image"]))
        if img is None:
            raise FileNotFoundError(f"cannot read image {DATA / item['image']}")
        canvas, _ = letterbox(np.asarray(img, np.uint8), (416, 416), "yolox")
        outs = session.run(FEATURES, {"images": to_tensor(canvas, "yolox")[None]})
        xs.append(
            np.concatenate(
                [np.concatenate([o[0].mean(axis=(1, 2)), o[0].max(axis=(1, 2))]) for o in outs]
            )
        )
        ys.append(1.0 if item["overflow"] == "yes" else 0.0)
        names.append(item["image"])
    return np.array(xs, np.float64), np.array(ys), names


def cross_validate(
    x: np.ndarray, y: np.ndarray, repeats: int = 5, folds: int = 5
) -> dict[str, float]:
    rng = np.random.default_rng(0)
    tp = fp = tn = fn = 0
    for _ in range(repeats):
        idx = rng.permutation(len(y))
        parts = np.array_split(idx, folds)
        for k in range(folds):
            test = parts[k]
            train = np.concatenate([parts[j] for j in range(folds) if j != k])
            pred = predict(fit(x[train], y[train]), x[test]) >= 0.5
            truth = y[test] == 1
            tp += int((pred & truth).sum())
            fp += int((pred & ~truth).sum())
            tn += int((~pred & ~truth).sum())
            fn += int((~pred & truth).sum())
    total = tp + fp + tn + fn
    return {
        "accuracy": round((tp + tn) / total, 3),
        "precision": round(tp / max(1, tp + fp), 3),
        "recall": round(tp / max(1, tp + fn), 3),
        "evaluations": total,
    }


def main() -> int:
    if not DATA.exists():
        print(f"skipped: {DATA} not found")
        return 0
    x, y, _ = dataset()
    cv = cross_validate(x, y)
    mu, sd, w, b = fit(x, y)
    model = pooled_graph(feature_model(), mu, sd, w, b)
    onnx.checker.check_model(model)
    OUT.write_bytes(model.SerializeToString())
    digest = hashlib.sha256(OUT.read_bytes()).hexdigest()
    meta = {"images": len(y), "positives": int(y.sum()), "cross_validation": cv, "sha256": digest,
            "lambda": LAMBDA, "features": FEATURES}  # fmt: skip
    (OUT.with_suffix(".json")).write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(meta, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
