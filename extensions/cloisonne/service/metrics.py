"""Prometheus metrics of the airlock (served at ``/services/cloisonne/metrics``).

Requests by state are counted from the database at each scrape, so they are right after a
restart; durations are histograms kept since the service started.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from ..airlock.model import State


class _StateCollector:
    def __init__(
        self, counts: Callable[[], dict[str, int]], oldest_waiting: Callable[[], float]
    ) -> None:
        self.counts = counts
        self.oldest_waiting = oldest_waiting

    def collect(self) -> Iterator[Any]:
        family = GaugeMetricFamily(
            "cloisonne_airlock_requests", "Export requests by state", labels=["state"]
        )
        counts = self.counts()
        for state in State:
            family.add_metric([state.value], counts.get(state.value, 0))
        yield family
        yield GaugeMetricFamily(
            "cloisonne_airlock_oldest_waiting_seconds",
            "How long the oldest request waiting for a decision (checked or in review) has "
            "waited since its checks completed",
            value=self.oldest_waiting(),
        )


class AirlockMetrics:
    def __init__(
        self, counts: Callable[[], dict[str, int]], oldest_waiting: Callable[[], float]
    ) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_StateCollector(counts, oldest_waiting))
        self.check_seconds = Histogram(
            "cloisonne_airlock_check_duration_seconds",
            "Time to run the automated disclosure checks on one request",
            registry=self.registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.review_wait_seconds = Histogram(
            "cloisonne_airlock_review_wait_seconds",
            "Time from checks complete to the decision on a round (approved, returned, rejected)",
            registry=self.registry,
            buckets=(60, 300, 900, 3600, 4 * 3600, 86400, 3 * 86400, 7 * 86400),
        )
        self.submitted_bytes = Counter(
            "cloisonne_airlock_submitted_bytes", "Bytes of files submitted", registry=self.registry
        )
        self.downloads = Counter(
            "cloisonne_airlock_downloads", "Released files downloaded", registry=self.registry
        )
