"""Ingest one day of downlink files: decode, validate, de-duplicate, reconcile — in bounded memory.

Pure domain code: the raw_telemetry asset feeds it file loaders and a sink and writes what comes out.

Files are processed satellite by satellite (the file name carries the satellite id); retransmitted
duplicates are found within a satellite's files, so memory is bounded by one satellite's day, not the
fleet's. Accepted rows leave through the sink in Arrow record batches of ``batch_rows``; latency is
kept as a fixed-width histogram. Packets whose APID differs from their file's satellite (valid CRC, a
relay or a mislabelled file) are held back and de-duplicated together at the end of the day.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa

from astromined.sim.downlink import parse_downlink_file_name
from astromined.telemetry import packet_format as fmt
from astromined.telemetry.decode import (
    QUARANTINE_COLUMNS,
    PacketBatch,
    decode_packets,
    duplicate_mask,
    lost_packet_counts,
    observation_columns,
    quarantine_columns,
    quarantine_frame,
)

UNRECOGNIZED_FILE = "unrecognized_file"
LATENCY_BIN_S = 10.0
LATENCY_BINS = 3 * 86_400 // int(LATENCY_BIN_S)  # 0 .. 3 days; later arrivals land in the last bin

OBSERVATION_SCHEMA = pa.schema(
    [
        ("satellite_id", pa.int32()),
        ("sequence_count", pa.int32()),
        ("observed_at", pa.timestamp("us", tz="UTC")),
        ("asteroid_id", pa.int64()),
        *[
            (name, pa.float32())
            for name in fmt.PAYLOAD_DTYPE.names
            if name not in ("asteroid_id", "reflectance", "quality_flags")
        ],
        *[(f"reflectance_{i:02d}", pa.float32()) for i in range(fmt.N_BANDS)],
        ("quality_flags", pa.int32()),
        ("source_file", pa.dictionary(pa.int32(), pa.string())),
        ("file_offset", pa.int64()),
        ("received_at", pa.timestamp("us", tz="UTC")),
    ]
)
QUARANTINE_SCHEMA = pa.schema(
    [
        ("source_file", pa.string()),
        ("offset", pa.int64()),
        ("length", pa.int64()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("satellite_id", pa.int32()),
        ("raw", pa.binary()),
    ]
)


class IngestSink(Protocol):
    def write_observations(self, table: pa.Table) -> None: ...
    def write_quarantine(self, table: pa.Table) -> None: ...


class MemorySink:
    """Collects everything in memory (tests, small days)."""

    def __init__(self) -> None:
        self.observations: list[pa.Table] = []
        self.quarantine: list[pa.Table] = []

    def write_observations(self, table: pa.Table) -> None:
        self.observations.append(table)

    def write_quarantine(self, table: pa.Table) -> None:
        self.quarantine.append(table)


@dataclasses.dataclass
class DayStats:
    day: dt.date
    files: int = 0
    bytes_in: int = 0
    packets_in: int = 0
    packets_ok: int = 0
    packets_quarantined: int = 0
    duplicates: int = 0
    reasons: Counter = dataclasses.field(default_factory=Counter)
    lost: dict[int, int] = dataclasses.field(default_factory=dict)
    latency_histogram: np.ndarray = dataclasses.field(
        default_factory=lambda: np.zeros(LATENCY_BINS, np.int64)
    )
    latency_min_s: float = float("inf")
    latency_max_s: float = float("-inf")

    @property
    def reconciles(self) -> bool:
        return self.packets_in == self.packets_ok + self.packets_quarantined + self.duplicates

    @property
    def satellites_reporting(self) -> int:
        return len(self.lost)

    @property
    def lost_by_satellite(self) -> pd.Series:
        return pd.Series(dict(sorted(self.lost.items())), dtype=np.int64)

    def quarantine_by_reason(self) -> dict[str, int]:
        return {k: int(v) for k, v in sorted(self.reasons.items())}

    def latency_percentiles_s(self) -> dict[str, float]:
        """Observation-to-receipt latency percentiles (p50, p90, p99), to the histogram's 10 s bins."""
        total = int(self.latency_histogram.sum())
        if total == 0:
            return {}
        cumulative = np.cumsum(self.latency_histogram)
        result = {}
        for q in (50, 90, 99):
            index = int(np.searchsorted(cumulative, np.ceil(total * q / 100.0)))
            upper_edge = (index + 1) * LATENCY_BIN_S
            result[f"p{q}"] = float(np.clip(upper_edge, self.latency_min_s, self.latency_max_s))
        return result


@dataclasses.dataclass(frozen=True)
class DayIngest:
    """A whole day in memory: the stats plus the observation and quarantine frames."""

    stats: DayStats
    observations: pd.DataFrame
    quarantine: pd.DataFrame

    def __getattr__(self, name: str):
        return getattr(self.stats, name)


def day_window(day: dt.date) -> tuple[float, float]:
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()
    return start, start + 86_400.0


def _satellite_of(name: str) -> tuple[int | None, float | None, str | None]:
    try:
        satellite, received = parse_downlink_file_name(name)
    except ValueError as exc:
        return None, None, str(exc)
    return satellite, received.timestamp(), None


class _DayIngestor:
    def __init__(self, day: dt.date, sink: IngestSink, batch_rows: int):
        self.stats = DayStats(day=day)
        self.window = day_window(day)
        self.sink = sink
        self.batch_rows = batch_rows
        self.pending: list[pa.RecordBatch] = []
        self.pending_rows = 0
        self.strays: list[pa.RecordBatch] = []

    def unrecognized(self, name: str, data: bytes, why: str) -> None:
        """Not a downlink at all: the whole file is one quarantined unit (its row records the length)."""
        self.stats.packets_in += 1
        self.stats.packets_quarantined += 1
        self.stats.reasons[UNRECOGNIZED_FILE] += 1
        self.sink.write_quarantine(
            pa.Table.from_pydict(
                {
                    "source_file": [name],
                    "offset": [0],
                    "length": [len(data)],
                    "reason": [UNRECOGNIZED_FILE],
                    "detail": [why],
                    "satellite_id": [-1],
                    "raw": [data[: fmt.PACKET_SIZE]],
                },
                schema=QUARANTINE_SCHEMA,
            )
        )

    def satellite(
        self, satellite_id: int, names: list[str], buffers: list[np.ndarray], received: list[float]
    ) -> None:
        batch, gaps = decode_packets(buffers, received, *self.window)
        self.stats.packets_in += len(batch) + sum(len(g) for g in gaps)
        quarantine = quarantine_columns(batch, gaps, buffers, names)
        if quarantine["reason"]:
            self.stats.packets_quarantined += len(quarantine["reason"])
            self.stats.reasons.update(quarantine["reason"])
            self.sink.write_quarantine(pa.Table.from_pydict(quarantine, schema=QUARANTINE_SCHEMA))
        ok = batch.ok
        own = ok & (batch.apid == satellite_id)
        if (ok & ~own).any():
            self.strays.append(self._record_batch(batch, ok & ~own, names))
        self._accept(batch, own, names)

    def _record_batch(self, batch: PacketBatch, mask: np.ndarray, names: list[str]) -> pa.RecordBatch:
        columns = observation_columns(batch, mask)
        arrays = [
            pa.DictionaryArray.from_arrays(columns["source_file"], pa.array(names, pa.string()))
            if field.name == "source_file"
            else pa.array(columns[field.name], field.type)
            for field in OBSERVATION_SCHEMA
        ]
        return pa.RecordBatch.from_arrays(arrays, schema=OBSERVATION_SCHEMA)

    def _accept(self, batch: PacketBatch, mask: np.ndarray, names: list[str]) -> None:
        index = np.flatnonzero(mask)
        observed_us = np.round(batch.times[index] * 1e6).astype(np.int64)
        duplicate = duplicate_mask(batch.apid[index], batch.sequence_count[index], observed_us)
        keep = index[~duplicate]
        self.stats.duplicates += int(duplicate.sum())
        self._count(
            batch.apid[keep],
            batch.sequence_count[keep],
            observed_us[~duplicate],
            batch.received_at[keep] - batch.times[keep],
        )
        if len(keep):
            keep_mask = np.zeros(len(batch), dtype=bool)
            keep_mask[keep] = True
            self._emit(self._record_batch(batch, keep_mask, names))

    def _count(
        self, apid: np.ndarray, sequence: np.ndarray, observed_us: np.ndarray, latency_s: np.ndarray
    ) -> None:
        self.stats.packets_ok += len(apid)
        for satellite, lost in lost_packet_counts(apid, sequence, observed_us).items():
            self.stats.lost[satellite] = self.stats.lost.get(satellite, 0) + lost
        latency_s = latency_s[np.isfinite(latency_s)]
        if len(latency_s):
            bins = np.clip((latency_s // LATENCY_BIN_S).astype(np.int64), 0, LATENCY_BINS - 1)
            self.stats.latency_histogram += np.bincount(bins, minlength=LATENCY_BINS)
            self.stats.latency_min_s = min(self.stats.latency_min_s, float(latency_s.min()))
            self.stats.latency_max_s = max(self.stats.latency_max_s, float(latency_s.max()))

    def _emit(self, batch: pa.RecordBatch) -> None:
        self.pending.append(batch)
        self.pending_rows += batch.num_rows
        if self.pending_rows >= self.batch_rows:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            self.sink.write_observations(pa.Table.from_batches(self.pending, schema=OBSERVATION_SCHEMA))
        self.pending, self.pending_rows = [], 0

    def finish(self) -> DayStats:
        if self.strays:
            strays = pa.Table.from_batches(self.strays, schema=OBSERVATION_SCHEMA)
            satellite = strays["satellite_id"].to_numpy()
            sequence = strays["sequence_count"].to_numpy()
            observed_us = strays["observed_at"].cast(pa.int64()).to_numpy()
            duplicate = duplicate_mask(satellite, sequence, observed_us)
            # A stray may repeat a packet already accepted from its own satellite's file: that one is
            # kept (it was seen first); such cross-file repeats are rare and counted as accepted here.
            self.stats.duplicates += int(duplicate.sum())
            kept = strays.filter(pa.array(~duplicate))
            received = kept["received_at"].cast(pa.int64()).to_numpy() / 1e6
            observed = kept["observed_at"].cast(pa.int64()).to_numpy()
            self._count(
                kept["satellite_id"].to_numpy(),
                kept["sequence_count"].to_numpy(),
                observed,
                received - observed / 1e6,
            )
            for record_batch in kept.to_batches():
                self._emit(record_batch)
        self._flush()
        return self.stats


def stream_day(
    day: dt.date,
    files: Iterable[tuple[str, Callable[[], bytes]]],
    sink: IngestSink,
    on_file: Callable[[str], None] | None = None,
    batch_rows: int = 262_144,
) -> DayStats:
    """Decode every file of a day into ``sink``. ``files`` yields (name, loader) pairs; contents load lazily.

    Raises FileNotFoundError naming the day when there are no files at all.
    """
    ingestor = _DayIngestor(day, sink, batch_rows)
    named = sorted(
        ((name, load, *_satellite_of(name)) for name, load in files), key=lambda f: (f[2] or 0, f[0])
    )
    if not named:
        raise FileNotFoundError(f"no downlink files for {day.isoformat()}")
    for satellite_id, group in itertools.groupby(named, key=lambda f: f[2]):
        names, buffers, received = [], [], []
        for name, load, _sat, received_at, problem in group:
            data = load()
            ingestor.stats.files += 1
            ingestor.stats.bytes_in += len(data)
            if satellite_id is None:
                ingestor.unrecognized(name, data, problem)
            else:
                names.append(name)
                buffers.append(np.frombuffer(data, dtype=np.uint8))
                received.append(received_at)
            if on_file is not None:
                on_file(name)
        if satellite_id is not None:
            ingestor.satellite(satellite_id, names, buffers, received)
    return ingestor.finish()


def ingest_day(
    day: dt.date,
    files: Iterable[tuple[str, Callable[[], bytes]]],
    on_file: Callable[[str], None] | None = None,
) -> DayIngest:
    """The whole day in memory, as pandas frames (for tests, tools and small days)."""
    sink = MemorySink()
    stats = stream_day(day, files, sink, on_file=on_file)
    observations = pa.concat_tables(sink.observations).to_pandas() if sink.observations else None
    if observations is None:
        observations = OBSERVATION_SCHEMA.empty_table().to_pandas()
    observations["source_file"] = observations["source_file"].astype(object)
    observations = observations.sort_values(["satellite_id", "observed_at", "sequence_count"]).reset_index(
        drop=True
    )
    if sink.quarantine:
        quarantine = pa.concat_tables(sink.quarantine).to_pandas()
    else:
        quarantine = pd.DataFrame(columns=QUARANTINE_COLUMNS)
    return DayIngest(stats=stats, observations=observations, quarantine=quarantine_frame(quarantine))
