"""Parsing datasets at scale on Ray Data (``m2fp batch``; the optional extra ``m2fp[ray]``).

Inputs (``sources``) are listed on the driver, skipping those with a complete output
(``outputs``); a pool of stateful Ray actors (``actor``), each loading the model once, reads,
decodes and parses them and writes each result atomically, in the ``files`` form of
``m2fp parse --out`` or as Parquet rows (``parquet_rows``); ``job`` wires it together and
records failures and the closing summary. Nothing outside this package imports Ray.
"""
