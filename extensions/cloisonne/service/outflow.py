"""Per-project daily outflow totals and the budget alert (kept in the service, which sees every
workspace's meter reports)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime

from ..audit.chain import Event


class OutflowBudget:
    def __init__(self, budget_bytes: int):
        self.budget = budget_bytes
        self.totals: dict[tuple[str, str], int] = defaultdict(int)
        self.alerted: set[tuple[str, str]] = set()
        self.loaded_days: set[str] = set()

    @staticmethod
    def day(moment: datetime | None = None) -> str:
        return (moment or datetime.now(UTC)).strftime("%Y-%m-%d")

    def load(self, day: str, events: Iterable[Event]) -> None:
        """Rebuild a day's totals from the log (after a service restart)."""
        for event in events:
            if event.time.startswith(day):
                if event.type == "guard.outflow":
                    self.totals[(event.project, day)] += sum(event.fields.get("bytes", {}).values())
                elif event.type == "alert.outflow_budget":
                    self.alerted.add((event.project, day))
        self.loaded_days.add(day)

    def add(self, project: str, nbytes: int, day: str) -> int | None:
        """Add bytes; return the day's total if this report crossed the budget (alert once)."""
        key = (project, day)
        self.totals[key] += nbytes
        if self.totals[key] > self.budget and key not in self.alerted:
            self.alerted.add(key)
            return self.totals[key]
        return None
