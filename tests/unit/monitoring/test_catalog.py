"""The metric catalog agrees with docs/contracts.md, and its specs are well-formed."""

import re
from pathlib import Path

import pytest

from astromined.monitoring import catalog
from astromined.monitoring.catalog import MetricSpec

CONTRACTS = Path(__file__).parents[3] / "docs" / "contracts.md"
ROW = re.compile(r"^\| `(astromined_[a-z0-9_]+)` \| (\w+) \|([^|]*)\|", re.MULTILINE)


def _contract_rows() -> dict[str, tuple[str, tuple[str, ...]]]:
    rows = {}
    for name, kind, labels in ROW.findall(CONTRACTS.read_text()):
        # "`role` (`champion`, ...), `metric` (...)": the names outside the parentheses are the labels.
        rows[name] = (kind, tuple(re.findall(r"`([a-z_]+)`", re.sub(r"\([^)]*\)", "", labels))))
    return rows


def test_every_contract_metric_is_in_the_catalog_with_its_type_and_labels():
    rows = _contract_rows()
    assert len(rows) >= 20, "the metrics table in docs/contracts.md was not parsed"
    for name, (kind, labels) in rows.items():
        spec = catalog.BY_NAME[name]
        assert spec.type == kind, name
        assert set(spec.labels) == set(labels), (name, spec.labels, labels)


def test_the_catalog_adds_only_exporter_self_metrics_beyond_the_contract():
    extra = catalog.metric_names() - set(_contract_rows())
    assert extra <= {"astromined_exporter_errors_total", "astromined_exporter_last_refresh_timestamp_seconds"}


def test_latency_buckets_are_the_contract_buckets():
    text = CONTRACTS.read_text()
    line = next(line for line in text.splitlines() if "astromined_data_to_model_latency_seconds" in line)
    documented = tuple(float(b) for b in re.search(r"buckets ([\d, ]+)", line).group(1).split(","))
    assert catalog.DATA_TO_MODEL_LATENCY.buckets == documented


def test_series_names_expand_histograms_and_keep_counter_suffixes():
    names = catalog.series_names()
    assert "astromined_step_duration_seconds_bucket" in names
    assert "astromined_step_duration_seconds_count" in names
    assert "astromined_step_duration_seconds" not in names
    assert "astromined_run_failures_total" in names
    assert catalog.spec("astromined_data_to_model_latency_seconds_sum") is catalog.DATA_TO_MODEL_LATENCY
    assert catalog.RUN_FAILURES.family_name == "astromined_run_failures"


def test_unknown_names_are_refused_by_name():
    with pytest.raises(KeyError, match="astromined_nonsense"):
        catalog.spec("astromined_nonsense")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "pipeline_runs", "type": "gauge"}, "starts with 'astromined_'"),
        ({"name": "astromined_x", "type": "counter"}, "end in '_total'"),
        ({"name": "astromined_x_total", "type": "gauge"}, "end in '_total'"),
        ({"name": "astromined_x", "type": "histogram"}, "have buckets"),
        ({"name": "astromined_x", "type": "histogram", "buckets": (2.0, 1.0)}, "strictly increasing"),
    ],
)
def test_malformed_specs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MetricSpec(help="h", **kwargs)
