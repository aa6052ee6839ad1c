"""Safe reading of model weights: the checkpoint primitives, safetensors parsed as views of
one buffer, sha256 pins, the one loader (directory, ``.m2fp``, Fernet token), whole-file
reads, the hub download and where models are found on disk."""
