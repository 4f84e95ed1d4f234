"""Accumulated values render as valid Prometheus text with the catalog's names."""

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from astromined.monitoring import catalog
from astromined.monitoring.metric_state import MetricState


class _Collector(Collector):
    def __init__(self, state):
        self.state = state

    def collect(self):
        return self.state.families()


def _scrape(state: MetricState) -> dict[str, list]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(state))
    text = generate_latest(registry).decode()
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def test_counters_accumulate_and_render_with_total_suffix():
    state = MetricState()
    state.inc(catalog.PACKETS, ("ok",), 10)
    state.inc(catalog.PACKETS, ("ok",), 5)
    state.inc(catalog.PACKETS, ("quarantined",), 2)
    samples = _scrape(state)["astromined_packets"]
    values = {s.labels["outcome"]: s.value for s in samples if s.name == "astromined_packets_total"}
    assert values == {"ok": 15.0, "quarantined": 2.0}


def test_histogram_buckets_are_cumulative_with_sum_and_count():
    state = MetricState()
    for latency in (200.0, 650.0, 650.0, 100000.0):
        state.observe(catalog.DATA_TO_MODEL_LATENCY, (), latency)
    samples = _scrape(state)["astromined_data_to_model_latency_seconds"]
    buckets = {s.labels["le"]: s.value for s in samples if s.name.endswith("_bucket")}
    assert buckets["300.0"] == 1
    assert buckets["600.0"] == 1
    assert buckets["900.0"] == 3
    assert buckets["86400.0"] == 3
    assert buckets["+Inf"] == 4
    assert [s.value for s in samples if s.name.endswith("_count")] == [4]
    assert [s.value for s in samples if s.name.endswith("_sum")] == [101500.0]


def test_a_value_on_a_bucket_bound_counts_in_that_bucket():
    state = MetricState()
    state.observe(catalog.DATA_TO_MODEL_LATENCY, (), 300.0)
    samples = _scrape(state)["astromined_data_to_model_latency_seconds"]
    assert next(s.value for s in samples if s.labels.get("le") == "300.0") == 1


def test_set_latest_keeps_the_newest_event_whatever_the_reading_order():
    state = MetricState()
    state.set_latest(catalog.ASSET_CHECK_PASSED, ("raw_telemetry", "packets_reconcile"), 0.0, timestamp=200.0)
    state.set_latest(catalog.ASSET_CHECK_PASSED, ("raw_telemetry", "packets_reconcile"), 1.0, timestamp=100.0)
    assert state.value(catalog.ASSET_CHECK_PASSED, ("raw_telemetry", "packets_reconcile")) == 0.0


def test_replace_if_newer_swaps_the_whole_group():
    state = MetricState()
    assert state.replace_if_newer(catalog.READINESS_READY, {("lake",): 1, ("gpu",): 0}, timestamp=10.0)
    assert state.replace_if_newer(catalog.READINESS_READY, {("lake",): 1}, timestamp=20.0)
    assert not state.replace_if_newer(catalog.READINESS_READY, {("old",): 1}, timestamp=15.0)
    samples = _scrape(state)["astromined_readiness_ready"]
    assert {s.labels["component"] for s in samples} == {"lake"}


def test_every_catalog_family_is_rendered_even_when_empty():
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(MetricState()))
    text = generate_latest(registry).decode()
    for spec in catalog.ALL_METRICS:
        assert f"# TYPE {spec.name} {spec.type}" in text


def test_misuse_is_refused():
    state = MetricState()
    with pytest.raises(ValueError, match="takes labels"):
        state.inc(catalog.PACKETS, ())
    with pytest.raises(ValueError, match="cannot decrease"):
        state.inc(catalog.PACKETS, ("ok",), -1)
    with pytest.raises(TypeError):
        state.inc(catalog.RUNS, ("job", "SUCCESS"))
    with pytest.raises(TypeError):
        state.observe(catalog.PACKETS, ("ok",), 1.0)
