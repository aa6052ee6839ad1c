"""``m2fp scan URL``: an outside-in check of a running deployment, for a daily cron job.

Black-box only (standard library and httpx): what any client of the deployment can see. The
checks are ``runner.CHECKS``; ``runner.run_scan`` runs them and returns a ``ScanReport``.
"""
