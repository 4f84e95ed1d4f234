"""The exporter's accumulated metric values, and their rendering as Prometheus metric families.

Counters and histograms only grow (they accumulate events read once from the event log); gauges are
either recomputed on each refresh (``replace``) or keep the value of the newest event seen
(``set_latest`` / ``replace_if_newer``: event order across runs is not time order). Thread-safe: the
refresh thread writes while HTTP scrapes read.
"""

from __future__ import annotations

import bisect
import dataclasses
import threading
from collections.abc import Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from astromined.monitoring.catalog import ALL_METRICS, MetricSpec

Labels = tuple[str, ...]


@dataclasses.dataclass
class _Histogram:
    bucket_counts: list[int]  # per bucket, not cumulative; the last entry is +Inf
    total: float = 0.0
    count: int = 0


class MetricState:
    def __init__(self, specs: tuple[MetricSpec, ...] = ALL_METRICS):
        self._specs = {spec.name: spec for spec in specs}
        self._values: dict[str, dict[Labels, float]] = {spec.name: {} for spec in specs}
        self._histograms: dict[str, dict[Labels, _Histogram]] = {spec.name: {} for spec in specs}
        self._timestamps: dict[tuple[str, Labels | None], float] = {}
        self._lock = threading.RLock()

    def _labels(self, spec: MetricSpec, labels: Labels) -> Labels:
        if spec.name not in self._specs:
            raise KeyError(f"metric {spec.name!r} is not in this state's catalog")
        if len(labels) != len(spec.labels):
            raise ValueError(f"metric {spec.name!r} takes labels {spec.labels}, got values {labels}")
        return tuple(str(value) for value in labels)

    def inc(self, spec: MetricSpec, labels: Labels = (), amount: float = 1.0) -> None:
        if spec.type != "counter":
            raise TypeError(f"inc() on {spec.type} {spec.name!r}")
        if amount < 0:
            raise ValueError(f"counter {spec.name!r} cannot decrease (amount {amount})")
        key = self._labels(spec, labels)
        with self._lock:
            values = self._values[spec.name]
            values[key] = values.get(key, 0.0) + amount

    def observe(self, spec: MetricSpec, labels: Labels, value: float) -> None:
        if spec.type != "histogram":
            raise TypeError(f"observe() on {spec.type} {spec.name!r}")
        key = self._labels(spec, labels)
        with self._lock:
            histogram = self._histograms[spec.name].get(key)
            if histogram is None:
                histogram = _Histogram(bucket_counts=[0] * (len(spec.buckets) + 1))
                self._histograms[spec.name][key] = histogram
            histogram.bucket_counts[bisect.bisect_left(spec.buckets, value)] += 1
            histogram.total += value
            histogram.count += 1

    def set_latest(self, spec: MetricSpec, labels: Labels, value: float, timestamp: float) -> None:
        """Set a gauge unless a newer event already set this series."""
        key = self._labels(spec, labels)
        with self._lock:
            if timestamp >= self._timestamps.get((spec.name, key), float("-inf")):
                self._timestamps[(spec.name, key)] = timestamp
                self._values[spec.name][key] = float(value)

    def replace_if_newer(self, spec: MetricSpec, values: Mapping[Labels, float], timestamp: float) -> bool:
        """Replace every series of a gauge with one newer event's values (e.g. the latest readiness)."""
        with self._lock:
            if timestamp < self._timestamps.get((spec.name, None), float("-inf")):
                return False
            self._timestamps[(spec.name, None)] = timestamp
            self.replace(spec, values)
            return True

    def replace(self, spec: MetricSpec, values: Mapping[Labels, float]) -> None:
        """Replace every series of a gauge with freshly computed values."""
        if spec.type != "gauge":
            raise TypeError(f"replace() on {spec.type} {spec.name!r}")
        checked = {self._labels(spec, labels): float(value) for labels, value in values.items()}
        with self._lock:
            self._values[spec.name] = checked

    def value(self, spec: MetricSpec, labels: Labels = ()) -> float | None:
        with self._lock:
            return self._values[spec.name].get(tuple(labels))

    def families(self) -> Iterator[Metric]:
        """prometheus_client metric families for every metric (empty families included)."""
        with self._lock:
            snapshot_values = {name: dict(values) for name, values in self._values.items()}
            snapshot_histograms = {
                name: {k: dataclasses.replace(h, bucket_counts=list(h.bucket_counts)) for k, h in hs.items()}
                for name, hs in self._histograms.items()
            }
        for spec in self._specs.values():
            if spec.type == "histogram":
                family = HistogramMetricFamily(spec.family_name, spec.help, labels=list(spec.labels))
                for labels, histogram in sorted(snapshot_histograms[spec.name].items()):
                    cumulative, buckets = 0, []
                    bounds = [*(str(float(b)) for b in spec.buckets), "+Inf"]
                    for bound, count in zip(bounds, histogram.bucket_counts, strict=True):
                        cumulative += count
                        buckets.append((bound, cumulative))
                    family.add_metric(list(labels), buckets, histogram.total)
            else:
                kind = CounterMetricFamily if spec.type == "counter" else GaugeMetricFamily
                family = kind(spec.family_name, spec.help, labels=list(spec.labels))
                for labels, value in sorted(snapshot_values[spec.name].items()):
                    family.add_metric(list(labels), value)
            yield family
