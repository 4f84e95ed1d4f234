"""Ingest one day of downlink files: decode, validate, de-duplicate, reconcile.

Pure domain code: the raw_telemetry asset feeds it file contents and writes what it returns.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from astromined.sim.downlink import parse_downlink_file_name
from astromined.telemetry.decode import (
    QUARANTINE_COLUMNS,
    decode_file,
    drop_duplicates,
    lost_packets_by_satellite,
)
from astromined.telemetry.packet_format import PACKET_SIZE

UNRECOGNIZED_FILE = "unrecognized_file"


@dataclasses.dataclass(frozen=True)
class DayIngest:
    day: dt.date
    observations: pd.DataFrame
    quarantine: pd.DataFrame
    files: int
    bytes_in: int
    packets_in: int
    duplicates: int
    lost_by_satellite: pd.Series

    @property
    def packets_ok(self) -> int:
        return len(self.observations)

    @property
    def packets_quarantined(self) -> int:
        return len(self.quarantine)

    @property
    def reconciles(self) -> bool:
        return self.packets_in == self.packets_ok + self.packets_quarantined + self.duplicates

    def quarantine_by_reason(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.quarantine["reason"].value_counts().sort_index().items()}

    def latency_percentiles_s(self) -> dict[str, float]:
        """Observation-to-receipt latency percentiles in seconds (p50, p90, p99)."""
        if self.observations.empty or "received_at" not in self.observations:
            return {}
        latency = (self.observations["received_at"] - self.observations["observed_at"]).dt.total_seconds()
        return {f"p{q}": float(np.percentile(latency, q)) for q in (50, 90, 99)}


def day_window(day: dt.date) -> tuple[float, float]:
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()
    return start, start + 86_400.0


def ingest_day(
    day: dt.date,
    files: Iterable[tuple[str, Callable[[], bytes]]],
    on_file: Callable[[str], None] | None = None,
) -> DayIngest:
    """Decode every file of a day. ``files`` yields (name, loader) pairs so contents load one at a time."""
    start, end = day_window(day)
    observations: list[pd.DataFrame] = []
    quarantine: list[pd.DataFrame] = []
    bytes_in = packets_in = n_files = 0
    for name, load in files:
        data = load()
        n_files += 1
        bytes_in += len(data)
        try:
            _, received_at = parse_downlink_file_name(name)
        except ValueError as exc:
            quarantine.append(
                pd.DataFrame(
                    {
                        "source_file": [name],
                        "offset": [0],
                        "length": [len(data)],
                        "reason": [UNRECOGNIZED_FILE],
                        "detail": [str(exc)],
                        "satellite_id": [-1],
                        "raw": [data[:PACKET_SIZE]],
                    }
                )
            )
            # Not a downlink at all: the whole file is one quarantined unit (its row records the length).
            packets_in += 1
            continue
        decoded = decode_file(data, name, start, end, received_at.timestamp())
        observations.append(decoded.observations)
        quarantine.append(decoded.quarantine)
        packets_in += decoded.packets_in
        if on_file is not None:
            on_file(name)
    if n_files == 0:
        raise FileNotFoundError(f"no downlink files for {day.isoformat()}")
    all_observations = (
        pd.concat(observations, ignore_index=True)
        if observations
        # No file decoded (all unrecognized): an empty frame that still has the observation columns.
        else decode_file(b"", "", start, end).observations
    )
    all_quarantine = (
        pd.concat(quarantine, ignore_index=True) if quarantine else pd.DataFrame(columns=QUARANTINE_COLUMNS)
    )
    deduplicated, duplicates = (
        drop_duplicates(all_observations) if len(all_observations) else (all_observations, 0)
    )
    deduplicated = deduplicated.sort_values(["satellite_id", "observed_at", "sequence_count"]).reset_index(
        drop=True
    )
    return DayIngest(
        day=day,
        observations=deduplicated,
        quarantine=all_quarantine,
        files=n_files,
        bytes_in=bytes_in,
        packets_in=packets_in,
        duplicates=duplicates,
        lost_by_satellite=lost_packets_by_satellite(deduplicated),
    )
