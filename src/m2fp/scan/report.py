"""What a scan found: one result per check, as lines, JSON and an alert summary."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict.

    Attributes:
        name: the check (``security_headers``, ``upload_bomb``...).
        passed: whether the deployment behaved as it must.
        detail: one line saying what was seen (never a secret: no key, no webhook URL).
    """

    name: str
    passed: bool
    detail: str


@dataclass
class ScanReport:
    """Every result of one scan of ``target``."""

    target: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def failures(self) -> list[CheckResult]:
        return [result for result in self.results if not result.passed]

    @property
    def passed(self) -> bool:
        return not self.failures

    def lines(self) -> list[str]:
        """``PASS name: detail`` / ``FAIL name: detail``, one per check."""
        return [f"{'PASS' if r.passed else 'FAIL'} {r.name}: {r.detail}" for r in self.results]

    def to_json(self) -> str:
        return json.dumps(
            {
                "target": self.target,
                "passed": self.passed,
                "failures": len(self.failures),
                "results": [asdict(result) for result in self.results],
            },
            indent=2,
        )

    def alert_text(self) -> str:
        """The Slack-style summary of the failures, for the alert webhook."""
        head = f"m2fp scan of {self.target}: {len(self.failures)} of {len(self.results)} failed"
        return "\n".join([head, *(f"- {r.name}: {r.detail}" for r in self.failures)])
