"""Protection of the weights at rest: keys, the encrypted ``.m2fp`` envelope, in-memory loading.

``keys`` needs only the standard library, so a server can resolve its key at start-up without
importing a cipher; the other modules need the ``cryptography`` package (``m2fp[crypto]``).
"""

CRYPTOGRAPHY_MISSING = (
    "encrypted models need the 'cryptography' package: pip install 'm2fp[crypto]'"
)
