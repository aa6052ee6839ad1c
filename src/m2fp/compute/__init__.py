"""How a parser computes: the options record (``ParserOptions``), device, engine and
precision and which combinations exist, what a choice means on this machine, and the process
heap after a parse.

``options``, ``parser_options`` and ``report``'s inputs are standard library only, so the CLI
and the server settings check choices without importing torch; ``device`` and ``precision``
need torch.
"""
