"""Other ways to run the network than PyTorch eager: OpenVINO (exact fp32, opt-in int8) and
ONNX export.

Every engine maps the same input to the same outputs as ``M2FP.forward``: a normalised,
zero-padded 1x3xHxW float32 batch (H, W multiples of 32) to class logits 1xQx(K+1) and mask
logits 1xQxH/4xW/4. The optional packages (``openvino``, ``nncf``, ``onnx``) are imported only
by the modules that need them, so importing this package costs nothing.
"""
