"""The ``m2fp serve`` web service: REST API, WebUI, hardening and audit logs.

Build it with ``m2fp.server.app.create_app(settings)``; nothing here runs at import time.
"""
