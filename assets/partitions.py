"""The daily partitioning shared by telemetry and feature assets (UTC days of observation)."""

import datetime as dt

import dagster as dg

MISSION_START = "2025-01-01"

daily_partitions = dg.DailyPartitionsDefinition(start_date=MISSION_START, timezone="UTC")


def partition_day(context: dg.AssetExecutionContext) -> dt.date:
    return dt.date.fromisoformat(context.partition_key)
