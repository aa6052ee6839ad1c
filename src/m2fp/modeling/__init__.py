"""Network modules: tensors in, tensors out; no PIL, numpy, files or HTTP here."""

from m2fp.modeling.m2fp import M2FP, M2FPHead

__all__ = ["M2FP", "M2FPHead"]
