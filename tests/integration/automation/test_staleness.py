"""``stale_assets``: after a code change, exactly the changed asset and what it feeds are stale (with the
change named as the cause); partitions never materialized are missing; nothing is stale when nothing
changed. Toy assets with explicit code versions, on an ephemeral instance."""

from __future__ import annotations

import dagster as dg

from astromined.automation.staleness import rerun_selection, stale_assets

DAILY = dg.DailyPartitionsDefinition(start_date="2026-01-01")


def graph(model_version: str) -> dg.Definitions:
    @dg.asset(partitions_def=DAILY, code_version="1")
    def telemetry() -> int:
        return 1

    @dg.asset(partitions_def=DAILY, deps=[telemetry], code_version="1")
    def features() -> int:
        return 2

    @dg.asset(
        deps=[dg.AssetDep(features, partition_mapping=dg.AllPartitionMapping())], code_version=model_version
    )
    def model() -> int:
        return 3

    @dg.asset(deps=[model], code_version="1")
    def package() -> int:
        return 4

    return dg.Definitions(assets=[telemetry, features, model, package])


def materialize(definitions: dg.Definitions, instance: dg.DagsterInstance, partition: str) -> None:
    job = definitions.resolve_implicit_global_asset_job_def()
    for keys, partition_key in ((["telemetry", "features"], partition), (["model", "package"], None)):
        result = job.execute_in_process(
            asset_selection=[dg.AssetKey(k) for k in keys], partition_key=partition_key, instance=instance
        )
        assert result.success


def names(found) -> list[str]:
    return [item.key.to_user_string() for item in found]


def test_a_model_code_change_makes_the_model_and_its_dependents_stale_not_the_data():
    with dg.instance_for_test() as instance:
        before = graph(model_version="1")
        materialize(before, instance, "2026-01-02")
        assert stale_assets(instance, before, "2026-01-02") == []

        after = graph(model_version="2")
        found = stale_assets(instance, after, "2026-01-02")
        # Dagster marks `package` stale only once `model` has a new data version; the rerun includes it.
        assert names(found) == ["model"]
        assert found[0].status == "STALE" and found[0].partition is None
        assert found[0].causes == ("model: has a new code version",)
        assert found[0].describe() == "model stale: model: has a new code version"
        everything = after.resolve_asset_graph().get_all_asset_keys()
        assert [k.to_user_string() for k in rerun_selection(after, found, everything)] == ["model", "package"]
        assert rerun_selection(after, found, [dg.AssetKey("model")]) == [dg.AssetKey("model")]
        assert rerun_selection(after, [], everything) == []


def test_an_unmaterialized_partition_is_missing_and_a_selection_limits_the_answer():
    with dg.instance_for_test() as instance:
        definitions = graph(model_version="1")
        materialize(definitions, instance, "2026-01-02")
        found = stale_assets(instance, definitions, "2026-01-03")
        missing = {(item.key.to_user_string(), item.partition, item.status) for item in found}
        assert {("telemetry", "2026-01-03", "MISSING"), ("features", "2026-01-03", "MISSING")} <= missing
        only_model = stale_assets(instance, definitions, "2026-01-03", selection=[dg.AssetKey("model")])
        assert all(item.key == dg.AssetKey("model") for item in only_model)
