"""The one decoder of untrusted image bytes, shared by the Python API, the CLI and the
server."""
