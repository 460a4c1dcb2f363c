"""Make a detector's input height and width free (symbolic) so frames need not be squared.

A 16:9 camera frame letterboxed into YOLOX-nano's fixed 416 × 416 input is 44 % grey padding,
and the network spends the same share of its time on it. YOLOX's graph has no size baked in
beyond the declared input and output shapes (its head flattens whatever grid it gets), so
marking those dimensions symbolic lets ``pipeline.detect.detector`` feed 416 × 288 instead
(the picture and a stride of grey): same weights, same operators, same scale, 0.69 of the work. The nominal size goes into the
model's ``imgsz`` metadata (as Ultralytics writes it) so the detector knows the longest side.

The result is checked before it is written: at the original size its output must equal the
source model's exactly, and at a smaller fitted size its anchor count must be the grid's.

    .venv/bin/python models/tools/free_input_size.py SRC.onnx models/yolox_nano.onnx
    # needs `onnx` (dev extra); the shipped yolox_nano.onnx was made from the upstream file
    # (sha256 695e750a…, see models/MODEL_CARD.md) this way
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

STRIDES = (8, 16, 32)


def free(model: onnx.ModelProto) -> tuple[int, int]:
    """Mark input H, W and every output dimension but the batch and channel as symbolic;
    returns the original (height, width)."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    if len(dims) != 4 or not (dims[2].dim_value and dims[3].dim_value):
        raise SystemExit("expected an NCHW input with fixed height and width")
    size = (dims[2].dim_value, dims[3].dim_value)
    for d, name in ((dims[2], "height"), (dims[3], "width")):
        d.ClearField("dim_value")
        d.dim_param = name
    for out in model.graph.output:
        for d in out.type.tensor_type.shape.dim[1:]:
            if d.dim_value not in (85, 84):  # the per-anchor fields stay fixed
                d.ClearField("dim_value")
                d.dim_param = "anchors"
    # inferred intermediate shapes were for the fixed size; onnxruntime re-infers them
    del model.graph.value_info[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = "imgsz", f"[{size[0]}, {size[1]}]"
    return size


def run(path: bytes | str, x: np.ndarray) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    s = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    return np.asarray(s.run(None, {s.get_inputs()[0].name: x})[0])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("src", type=Path)
    p.add_argument("dst", type=Path)
    args = p.parse_args()
    model = onnx.load(str(args.src))
    h, w = free(model)
    data = model.SerializeToString()
    rng = np.random.default_rng(0)
    x = (rng.random((1, 3, h, w)) * 255).astype(np.float32)
    if not np.array_equal(run(str(args.src), x), run(data, x)):
        raise SystemExit("the freed model's output differs from the source at its own size")
    fh = -(-round(h * 9 / 16) // 32) * 32  # a 16:9 frame's fitted canvas
    out = run(data, x[:, :, :fh])
    anchors = sum((fh // s) * (w // s) for s in STRIDES)
    if anchors not in out.shape:
        raise SystemExit(f"at {w}×{fh} the output is {out.shape}, expected {anchors} anchors")
    args.dst.write_bytes(data)
    print(f"{args.dst}: sha256 {hashlib.sha256(data).hexdigest()}, {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
