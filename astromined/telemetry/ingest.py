"""Ingest one day of downlink files: decode, validate, de-duplicate, reconcile — in bounded memory.

Pure domain code: the raw_telemetry asset feeds it file loaders and a sink and writes what comes out.

Files are processed satellite by satellite (the file name carries the satellite id); retransmitted
duplicates are found within a satellite's files, so memory is bounded by one satellite's day, not the
fleet's. Accepted rows leave through the sink in Arrow tables of up to ``batch_rows``; latency is
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

from astromined.telemetry import kernels
from astromined.telemetry import packet_format as fmt
from astromined.telemetry.decode import (
    QUARANTINE_COLUMNS,
    SCALAR_PAYLOAD_FIELDS,
    PacketBatch,
    duplicate_mask,
    frame_buffers,
    lost_packet_counts,
    observation_columns,
    packet_batch,
    quarantine_columns,
    quarantine_frame,
    reflectance_columns,
)
from astromined.telemetry.downlink_files import parse_downlink_file_name

UNRECOGNIZED_FILE = "unrecognized_file"
EMPTY_FILE = "empty_file"
LATENCY_BIN_S = 10.0
LATENCY_BINS = 3 * 86_400 // int(LATENCY_BIN_S)  # 0 .. 3 days; later arrivals land in the last bin
QUARANTINE_BATCH_ROWS = 65_536  # ~7 MB of raw octets at most, written per Parquet row group

# Every column is required (not nullable): Parquet then stores no definition levels, which makes the
# write ~1.5x faster (BENCHMARKS.md). Missing measurements are NaN (radar_albedo), never null.
OBSERVATION_SCHEMA = pa.schema(
    [
        pa.field(name, type_, nullable=False)
        for name, type_ in [
            ("satellite_id", pa.int32()),
            ("sequence_count", pa.int32()),
            ("observed_at", pa.timestamp("us", tz="UTC")),
            ("asteroid_id", pa.int64()),
            *[(name, pa.float32()) for name in SCALAR_PAYLOAD_FIELDS],
            *[(name, pa.float32()) for name in reflectance_columns()],
            ("quality_flags", pa.int32()),
            ("source_file", pa.dictionary(pa.int32(), pa.string())),
            ("file_offset", pa.int64()),
            ("received_at", pa.timestamp("us", tz="UTC")),
        ]
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


_FLOAT_ROW = {name: row for row, name in enumerate([*kernels.SCALAR_FLOAT_FIELDS, *reflectance_columns()])}
_KERNEL_COLUMN = {"observed_at": "observed_us", "received_at": "received_us"}


def _arrow(values: np.ndarray, type_: pa.DataType) -> pa.Array:
    """A contiguous native numpy column as an Arrow array of a fixed-width type, without a copy or a scan
    (``pa.array`` would look for NaT in timestamps and build a validity bitmap)."""
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(type_, len(values), [None, pa.py_buffer(values)])


class IngestSink(Protocol):
    """Where ``stream_day`` sends its output.

    The observation tables handed to ``write_observations`` are views of a buffer that is refilled after
    the call returns: write them out (as ParquetDaySink does) or copy them, never keep them.
    """

    def write_observations(self, table: pa.Table) -> None: ...
    def write_quarantine(self, table: pa.Table) -> None: ...


class MemorySink:
    """Collects everything in memory (tests, small days)."""

    def __init__(self) -> None:
        self.observations: list[pa.Table] = []
        self.quarantine: list[pa.Table] = []

    def write_observations(self, table: pa.Table) -> None:
        self.observations.append(table.take(np.arange(table.num_rows)))  # a copy: see IngestSink

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
    # Satellites by the files named after them (not by the APIDs inside): one file at least, one file
    # with octets at least, and those whose files' packets were all quarantined (none accepted, for
    # themselves or as another satellite's relayed packets).
    satellites_with_files: set[int] = dataclasses.field(default_factory=set)
    satellites_with_octets: set[int] = dataclasses.field(default_factory=set)
    satellites_fully_quarantined: set[int] = dataclasses.field(default_factory=set)

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

    def coverage(self, expected: Iterable[int]) -> SatelliteCoverage:
        """Which of the ``expected`` satellites sent no accepted packet this day, and why (see
        SatelliteCoverage)."""
        expected = sorted({int(s) for s in expected})
        reporting = set(self.lost)
        missing = [s for s in expected if s not in reporting]
        without_files = [s for s in missing if s not in self.satellites_with_files]
        only_empty = [
            s for s in missing if s in self.satellites_with_files and s not in self.satellites_with_octets
        ]
        only_quarantined = [s for s in missing if s in self.satellites_fully_quarantined]
        classified = {*without_files, *only_empty, *only_quarantined}
        return SatelliteCoverage(
            expected=len(expected),
            reporting=len(expected) - len(missing),
            missing=tuple(missing),
            without_files=tuple(without_files),
            only_empty_files=tuple(only_empty),
            only_quarantined=tuple(only_quarantined),
            only_other_satellites=tuple(s for s in missing if s not in classified),
            unexpected=tuple(sorted(reporting.difference(expected))),
        )

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


def compact_ids(ids: Iterable[int]) -> str:
    """Satellite ids as sorted, comma-separated ranges: ``[1, 2, 3, 5, 9, 10]`` -> ``"1-3, 5, 9-10"``."""
    values = sorted({int(i) for i in ids})
    runs: list[str] = []
    start = 0
    for k in range(1, len(values) + 1):
        if k == len(values) or values[k] != values[k - 1] + 1:
            first, last = values[start], values[k - 1]
            runs.append(str(first) if first == last else f"{first}-{last}")
            start = k
    return ", ".join(runs)


@dataclasses.dataclass(frozen=True)
class SatelliteCoverage:
    """The expected satellites with no accepted packet in a day (``missing``), split by why:

    - ``without_files``: no file named after it arrived;
    - ``only_empty_files``: every file named after it was zero-length (each is an ``empty_file`` row);
    - ``only_quarantined``: its files had octets, and every one of them is in quarantine;
    - ``only_other_satellites``: its files' accepted packets all carried other satellites' APIDs.

    ``unexpected`` lists satellites with accepted packets that are not among the expected ones (they do
    not make up for a missing one).
    """

    expected: int
    reporting: int
    missing: tuple[int, ...]
    without_files: tuple[int, ...]
    only_empty_files: tuple[int, ...]
    only_quarantined: tuple[int, ...]
    only_other_satellites: tuple[int, ...]
    unexpected: tuple[int, ...]

    @property
    def complete(self) -> bool:
        return not self.missing

    def describe(self) -> str:
        if not self.missing:
            return f"all {self.expected} expected satellites sent accepted packets"
        why = [
            f"{label}: {compact_ids(ids)}"
            for label, ids in (
                ("no file", self.without_files),
                ("only empty files", self.only_empty_files),
                ("every packet quarantined", self.only_quarantined),
                ("only other satellites' packets", self.only_other_satellites),
            )
            if ids
        ]
        return (
            f"{len(self.missing)} of {self.expected} expected satellites sent no accepted packet: "
            f"{compact_ids(self.missing)} ({'; '.join(why)})"
        )


@dataclasses.dataclass(frozen=True)
class DayIngest:
    """A whole day in memory: the stats plus the observation and quarantine frames."""

    stats: DayStats
    observations: pd.DataFrame
    quarantine: pd.DataFrame

    def __getattr__(self, name: str):
        return getattr(self.stats, name)


def _with_empty_files(quarantine: dict[str, list], names: list[str], satellite_id: int) -> dict[str, list]:
    """``quarantine`` plus one ``empty_file`` row per zero-length file in ``names`` (the satellite its name
    carries), still ordered by file then offset."""
    rows = list(zip(*(quarantine[column] for column in QUARANTINE_COLUMNS), strict=True))
    rows += [
        (name, 0, 0, EMPTY_FILE, f"downlink file {name!r} is empty (0 octets)", satellite_id, b"")
        for name in names
    ]
    rows.sort(key=lambda row: (row[0], row[1]))
    return {column: [row[k] for row in rows] for k, column in enumerate(QUARANTINE_COLUMNS)}


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
        self.rows = kernels.RowBuffer(batch_rows)
        self.pending_quarantine: dict[str, list] = {name: [] for name in QUARANTINE_COLUMNS}
        self.strays: list[pa.RecordBatch] = []

    def unrecognized(self, name: str, data: bytes, why: str) -> None:
        """Not a downlink at all: the whole file is one quarantined unit (its row records the length)."""
        self.stats.packets_in += 1
        self.stats.packets_quarantined += 1
        self.stats.reasons[UNRECOGNIZED_FILE] += 1
        self._quarantine(
            {
                "source_file": [name],
                "offset": [0],
                "length": [len(data)],
                "reason": [UNRECOGNIZED_FILE],
                "detail": [why],
                "satellite_id": [-1],
                "raw": [data[: fmt.PACKET_SIZE]],
            }
        )

    def satellite(
        self, satellite_id: int, names: list[str], buffers: list[np.ndarray], received: list[float]
    ) -> None:
        """Decode the files named after one satellite. A zero-length file holds no octet to decode or
        quarantine: it becomes one ``empty_file`` unit of its own so that it is not lost without trace."""
        empty = [index for index, buf in enumerate(buffers) if len(buf) == 0]
        self.stats.satellites_with_files.add(satellite_id)
        if len(empty) < len(buffers):
            self.stats.satellites_with_octets.add(satellite_id)
        packets, source_index, offsets, gaps = frame_buffers(buffers)
        latency_range = np.array([self.stats.latency_min_s, self.stats.latency_max_s])
        checked, kept, duplicates, lost, strays = kernels.satellite_rows(
            packets,
            source_index,
            offsets,
            *self.window,
            satellite_id,
            names,
            np.asarray(received, dtype=np.float64),
            LATENCY_BIN_S,
            self.stats.latency_histogram,
            latency_range,
            self.rows,
            self._make_room,
        )
        self.stats.latency_min_s, self.stats.latency_max_s = float(latency_range[0]), float(latency_range[1])
        self.stats.duplicates += duplicates
        if kept:
            self.stats.packets_ok += kept
            self.stats.lost[satellite_id] = self.stats.lost.get(satellite_id, 0) + lost
        if len(empty) < len(buffers) and kept == 0 and strays == 0:
            self.stats.satellites_fully_quarantined.add(satellite_id)
        batch = packet_batch(packets, source_index, offsets, received, checked)
        self.stats.packets_in += len(batch) + sum(len(g) for g in gaps) + len(empty)
        quarantine = quarantine_columns(batch, gaps, buffers, names)
        if empty:
            quarantine = _with_empty_files(quarantine, [names[index] for index in empty], satellite_id)
        if quarantine["reason"]:
            self.stats.packets_quarantined += len(quarantine["reason"])
            self.stats.reasons.update(quarantine["reason"])
            self._quarantine(quarantine)
        if strays:
            stray = (batch.code == 0) & (batch.apid != satellite_id)
            self.strays.append(self._record_batch(batch, stray, names))

    def _quarantine(self, columns: dict[str, list]) -> None:
        """Buffer quarantine rows and write them in tables of QUARANTINE_BATCH_ROWS: one table (and Parquet
        row group) per satellite, ~20 rows each, cost more than the rows themselves."""
        for name, values in columns.items():
            self.pending_quarantine[name].extend(values)
        if len(self.pending_quarantine["reason"]) >= QUARANTINE_BATCH_ROWS:
            self._flush_quarantine()

    def _flush_quarantine(self) -> None:
        if self.pending_quarantine["reason"]:
            self.sink.write_quarantine(
                pa.Table.from_pydict(self.pending_quarantine, schema=QUARANTINE_SCHEMA)
            )
        self.pending_quarantine = {name: [] for name in QUARANTINE_COLUMNS}

    def _record_batch(self, batch: PacketBatch, rows: np.ndarray, names: list[str]) -> pa.RecordBatch:
        """Accepted packets of other satellites (strays), kept aside until the end of the day."""
        columns = observation_columns(batch, rows)
        arrays = [
            pa.DictionaryArray.from_arrays(columns["source_file"], pa.array(names, pa.string()))
            if field.name == "source_file"
            else pa.array(columns[field.name], field.type)  # zero-copy: contiguous, native, no nulls
            for field in OBSERVATION_SCHEMA
        ]
        return pa.RecordBatch.from_arrays(arrays, schema=OBSERVATION_SCHEMA)

    def _make_room(self, rows: int) -> kernels.RowBuffer:
        """Write out the buffered rows; a satellite with more rows than a whole buffer gets a larger one."""
        self._flush()
        if rows > self.rows.capacity:
            self.rows = kernels.RowBuffer(rows)
        return self.rows

    def _flush(self) -> None:
        """Write the buffered rows as one table (one Parquet row group) and clear the buffer for reuse."""
        if not self.rows.rows:
            return
        columns = self.rows.columns()
        arrays = []
        for field in OBSERVATION_SCHEMA:
            if field.name == "source_file":
                names = pa.array(self.rows.file_names, pa.string())
                arrays.append(
                    pa.DictionaryArray.from_arrays(_arrow(columns["source_file"], pa.int32()), names)
                )
            elif field.name in _FLOAT_ROW:
                arrays.append(_arrow(columns["floats"][_FLOAT_ROW[field.name]], field.type))
            else:
                arrays.append(_arrow(columns[_KERNEL_COLUMN.get(field.name, field.name)], field.type))
        self.sink.write_observations(pa.Table.from_arrays(arrays, schema=OBSERVATION_SCHEMA))
        self.rows.clear()

    def _count(
        self, apid: np.ndarray, sequence: np.ndarray, observed_us: np.ndarray, latency_s: np.ndarray
    ) -> None:
        self.stats.packets_ok += len(apid)
        for satellite, lost in lost_packet_counts(apid, sequence, observed_us).items():
            self.stats.lost[satellite] = self.stats.lost.get(satellite, 0) + lost
        self._count_latency(latency_s)

    def _count_latency(self, latency_s: np.ndarray) -> None:
        latency_s = latency_s[np.isfinite(latency_s)]
        if len(latency_s):
            bins = np.clip((latency_s // LATENCY_BIN_S).astype(np.int64), 0, LATENCY_BINS - 1)
            self.stats.latency_histogram += np.bincount(bins, minlength=LATENCY_BINS)
            self.stats.latency_min_s = min(self.stats.latency_min_s, float(latency_s.min()))
            self.stats.latency_max_s = max(self.stats.latency_max_s, float(latency_s.max()))

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
            self._flush()
            if kept.num_rows:
                self.sink.write_observations(kept)
        self._flush()
        self._flush_quarantine()
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
    # Unrecognized names (satellite None) first, then by satellite and name: one group per satellite.
    named = sorted(
        ((name, load, *_satellite_of(name)) for name, load in files),
        key=lambda f: (-1 if f[2] is None else f[2], f[0]),
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
