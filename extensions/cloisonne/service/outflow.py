"""Per-project daily outflow totals and the budget alert (kept in the service, which sees every
workspace's meter reports)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime

from ..audit.chain import Event
from ..audit.events import NewEvent
from ..audit.store import AuditStore


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


def reported_bytes_by_day(events: Iterable[NewEvent]) -> dict[str, int]:
    """Bytes the guard's meter reports in ``events`` (its ``guard.outflow`` events), per UTC
    day of each event's own time: a report forwarded after midnight counts in the day it was
    metered, not the day it reached the chain (events without a time are stamped now)."""
    totals: dict[str, int] = defaultdict(int)
    for e in events:
        counts = (e.fields or {}).get("bytes") if e.type == "guard.outflow" else None
        if isinstance(counts, dict):
            reported = sum(v for v in counts.values() if isinstance(v, int))
            if reported:
                totals[OutflowBudget.day(e.time)] += reported
    return totals


async def account_outflow(
    budget: OutflowBudget, store: AuditStore, user: str, project: str, events: list[NewEvent]
) -> None:
    """Add already-stored meter reports to the project's days and raise the alert event once
    a day's budget is crossed (a day's totals are rebuilt from the log the first time it is
    seen, after a restart say)."""
    if not project:
        return
    for day, reported in sorted(reported_bytes_by_day(events).items()):
        if day not in budget.loaded_days:
            since = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
            history = await asyncio.to_thread(lambda s=since: list(store.iter_events(since=s)))
            budget.load(day, history)  # these reports are already stored, so load() counts them
            crossed = budget.add(project, 0, day)
        else:
            crossed = budget.add(project, reported, day)
        if crossed is not None:
            await asyncio.to_thread(
                store.append, "alert.outflow_budget", user=user, project=project,
                fields={"day": day, "total_bytes": crossed, "budget_bytes": budget.budget},
            )  # fmt: skip
