"""`astromined run`'s summary names why a step failed, not only which one."""

import dagster as dg

from astromined.run_summary import summarize_run


@dg.asset
def upstream() -> int:
    return 1


@dg.asset(deps=[upstream])
def gated() -> None:
    raise dg.Failure("candidate m-123 not promoted: macro-F1 0.95 does not beat the baseline's 0.96")


@dg.asset
def crashing() -> None:
    raise ValueError("lake object models/champion.json is not JSON")


def test_the_summary_names_each_failed_steps_reason():
    with dg.instance_for_test() as instance:
        result = dg.materialize([upstream, gated, crashing], instance=instance, raise_on_error=False)
        summary = summarize_run(result, instance, "2026-06-01")
    assert "FAILED" in summary
    assert "  gated: candidate m-123 not promoted: macro-F1 0.95 does not beat the baseline's 0.96" in summary
    assert "  crashing: ValueError: lake object models/champion.json is not JSON" in summary
