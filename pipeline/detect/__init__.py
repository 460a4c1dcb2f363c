"""Stage 2, detection: the change gate that skips idle frames, the batched ONNX inference
workers shared by all cameras, the detector models and the tracker."""
