"""Plain-ASGI middleware, one concern per module, options validated once in ``__init__``."""
