"""The parse defaults every interface shows (Python API, CLI, server settings), named once.

Standard library only, so the CLI can print them in ``--help`` without importing torch.
"""

from __future__ import annotations

# ModelScope's pipeline: network input short side 640, long side at most 1333
DEFAULT_MIN_SIZE = 640
DEFAULT_MAX_SIZE = 1333
# encoded images declaring more pixels are refused before decoding (decompression bombs)
DEFAULT_MAX_PIXELS = 50_000_000
# the largest encoded image taken: an upload to the server, an input file of ``m2fp parse``
DEFAULT_MAX_FILE_BYTES = 10 * 1024 * 1024
# weight of the class colours over the photo in the overlay
DEFAULT_ALPHA = 0.6
# drawn scenes the int8 backbone is calibrated on (m2fp.engines.calibration)
DEFAULT_CALIBRATION_SCENES = 32
# how long m2fp batch's actor pool may take to start (each actor loads the model) before the
# job fails: generous, since a cluster may first have to place the actors
DEFAULT_ACTOR_START_TIMEOUT_S = 600
# ONNX export (m2fp.engines.onnx_export): torch's dynamo exporter needs 17 or newer
DEFAULT_ONNX_OPSET = 18
