"""Vectorized decoding and validation of downlink files.

Every octet of a file ends up either in a decoded packet or in a quarantine row with a reason and the
file offset, so the counts always reconcile.

The hot loops (framing, CRC, header and range checks, column extraction) run in compiled kernels
(``kernels.py``); their numpy specifications (``frame_packets_reference``, ``validate_packets``,
``observation_columns_reference``) live in ``reference_decode.py``, for the tests that compare the two.

Two shapes of output: ``decode_file`` returns pandas frames for one file (tests, tools, small days);
``decode_packets`` + ``observation_columns``/``quarantine_columns`` return plain column dicts that the
streaming ingest turns into Arrow record batches without going through pandas.
"""

from __future__ import annotations

import dataclasses
from enum import StrEnum

import numpy as np
import pandas as pd

from astromined.telemetry import kernels
from astromined.telemetry import packet_format as fmt


class QuarantineReason(StrEnum):
    """Why a packet (or a run of octets) was not accepted. Values are stable: dashboards key on them."""

    UNFRAMED_BYTES = "unframed_bytes"  # octets that do not start a recognizable packet header
    TRUNCATED_PACKET = "truncated_packet"  # a header was found but the packet ends early
    CRC_MISMATCH = "crc_mismatch"
    BAD_SEQUENCE_FLAGS = "bad_sequence_flags"
    APID_OUT_OF_RANGE = "apid_out_of_range"
    TIMESTAMP_OUTSIDE_PARTITION = "timestamp_outside_partition"
    VALUE_OUT_OF_RANGE = "value_out_of_range"


QUARANTINE_COLUMNS = ["source_file", "offset", "length", "reason", "detail", "satellite_id", "raw"]
SCALAR_PAYLOAD_FIELDS = [
    name for name in fmt.PAYLOAD_DTYPE.names if name not in ("asteroid_id", "reflectance", "quality_flags")
]


def reflectance_columns() -> list[str]:
    return [f"reflectance_{i:02d}" for i in range(fmt.N_BANDS)]


# --- framing -------------------------------------------------------------------------------------------


_GAP_REASONS = {
    kernels.GAP_UNFRAMED: QuarantineReason.UNFRAMED_BYTES,
    kernels.GAP_TRUNCATED: QuarantineReason.TRUNCATED_PACKET,
}


def frame_packets(buf: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, QuarantineReason]]]:
    """Split a file into packet start offsets and quarantined octet runs ``(offset, length, reason)``.

    Compiled (``kernels.frame``): follows stride-aligned headers and scans octet by octet only after a
    disturbance. ``reference_decode.frame_packets_reference`` is the same algorithm in numpy, kept as its
    specification.
    """
    starts, gap_offset, gap_length, gap_reason = kernels.frame(buf)
    gaps = [
        (int(offset), int(length), _GAP_REASONS[int(reason)])
        for offset, length, reason in zip(gap_offset, gap_length, gap_reason, strict=True)
    ]
    return starts, gaps


# --- validation ----------------------------------------------------------------------------------------


# Each failed check has a small integer code; code 0 means accepted. Strings are made only for
# quarantined packets. One code per value-range field, so the detail can name the field.
_CHECKS: list[tuple[QuarantineReason, str]] = [
    (QuarantineReason.CRC_MISMATCH, ""),
    (QuarantineReason.BAD_SEQUENCE_FLAGS, ""),
    (QuarantineReason.APID_OUT_OF_RANGE, "apid"),
    (QuarantineReason.TIMESTAMP_OUTSIDE_PARTITION, "observed_at"),
    *[(QuarantineReason.VALUE_OUT_OF_RANGE, field) for field in fmt.VALUE_RANGES],
]
CHECK_CODES = {check: code for code, check in enumerate(_CHECKS, start=1)}
assert CHECK_CODES[(QuarantineReason.CRC_MISMATCH, "")] == kernels.CODE_CRC
assert CHECK_CODES[(QuarantineReason.BAD_SEQUENCE_FLAGS, "")] == kernels.CODE_SEQUENCE_FLAGS
assert CHECK_CODES[(QuarantineReason.APID_OUT_OF_RANGE, "apid")] == kernels.CODE_APID
assert CHECK_CODES[(QuarantineReason.TIMESTAMP_OUTSIDE_PARTITION, "observed_at")] == kernels.CODE_TIMESTAMP
assert all(
    CHECK_CODES[(QuarantineReason.VALUE_OUT_OF_RANGE, field)] == kernels.CODE_FIRST_RANGE + k
    for k, field in enumerate(kernels.RANGE_FIELDS)
)
REASON_BY_CODE = ["", *[reason.value for reason, _ in _CHECKS]]
DETAIL_BY_CODE = ["", *[detail for _, detail in _CHECKS]]


@dataclasses.dataclass
class PacketBatch:
    """Framed packets of one or more files, validated. ``code`` is 0 for accepted packets."""

    packets: np.ndarray  # PACKET_DTYPE
    source_index: np.ndarray  # int32 index into the caller's list of file names
    offsets: np.ndarray  # int64 offset of each packet in its file
    received_at: np.ndarray  # float64 UNIX seconds (NaN when unknown)
    apid: np.ndarray
    sequence_count: np.ndarray
    times: np.ndarray  # float64 UNIX seconds of observation
    code: np.ndarray  # uint8, see REASON_BY_CODE / DETAIL_BY_CODE

    @property
    def ok(self) -> np.ndarray:
        return self.code == 0

    def __len__(self) -> int:
        return len(self.packets)


def frame_buffers(
    buffers: list[np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[list[tuple[int, int, QuarantineReason]]]]:
    """Frame every buffer: all their packets as one contiguous PACKET_DTYPE array, each packet's buffer
    index and offset, and per buffer its quarantined octet runs (framing gaps)."""
    all_offsets, all_gaps, sources, rows = [], [], [], []
    for index, buf in enumerate(buffers):
        offsets, gaps = frame_packets(buf)
        all_gaps.append(gaps)
        all_offsets.append(offsets)
        sources.append(np.full(len(offsets), index, dtype=np.int32))
        if len(offsets) == 0:
            continue
        if not gaps and len(offsets) * fmt.PACKET_SIZE == len(buf):
            rows.append(buf.reshape(-1, fmt.PACKET_SIZE))  # the common case: a view, no gather
        else:
            rows.append(np.lib.stride_tricks.sliding_window_view(buf, fmt.PACKET_SIZE)[offsets])
    offsets = np.concatenate(all_offsets) if all_offsets else np.zeros(0, np.int64)
    source_index = np.concatenate(sources) if sources else np.zeros(0, np.int32)
    if len(rows) == 1:
        packet_rows = rows[0]
    else:
        packet_rows = np.concatenate(rows) if rows else np.zeros((0, fmt.PACKET_SIZE), np.uint8)
    packets = np.ascontiguousarray(packet_rows).view(fmt.PACKET_DTYPE).reshape(-1)
    return packets, source_index, offsets, all_gaps


def packet_batch(
    packets: np.ndarray,
    source_index: np.ndarray,
    offsets: np.ndarray,
    received_at: list[float | None],
    checked: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> PacketBatch:
    """A PacketBatch from framed packets and their (code, APID, sequence count, time) arrays."""
    code, apid, sequence_count, times = checked
    received = np.asarray([np.nan if r is None else r for r in received_at], dtype=np.float64)
    return PacketBatch(
        packets=packets,
        source_index=source_index,
        offsets=offsets,
        received_at=received[source_index] if len(received) else np.zeros(0),
        apid=apid,
        sequence_count=sequence_count,
        times=times,
        code=code,
    )


def decode_packets(
    buffers: list[np.ndarray],
    received_at: list[float | None],
    window_start: float | None = None,
    window_end: float | None = None,
) -> tuple[PacketBatch, list[list[tuple[int, int, QuarantineReason]]]]:
    """Frame every buffer, then validate all their packets in one pass.

    Returns the batch and, per buffer, its quarantined octet runs (framing gaps).
    """
    packets, source_index, offsets, gaps = frame_buffers(buffers)
    checked = kernels.validate(packets, window_start, window_end)
    return packet_batch(packets, source_index, offsets, received_at, checked), gaps


# --- outputs -------------------------------------------------------------------------------------------


def observation_columns(batch: PacketBatch, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The packets selected by ``rows`` (a boolean mask or an index array) as columns in the observation
    table's order, native byte order, each column contiguous (Arrow takes them without copying).

    ``source_file`` holds indices into the batch's file names (dictionary-encoded downstream).
    """
    index = np.flatnonzero(rows) if rows.dtype == np.bool_ else rows
    asteroid_id, floats, quality_flags = kernels.extract(batch.packets, index)
    observed_us = np.round(batch.times[index] * 1e6).astype(np.int64)
    columns: dict[str, np.ndarray] = {
        "satellite_id": batch.apid[index],
        "sequence_count": batch.sequence_count[index],
        "observed_at": observed_us.view("datetime64[us]"),
        "asteroid_id": asteroid_id,
    }
    for name, column in zip([*SCALAR_PAYLOAD_FIELDS, *reflectance_columns()], floats, strict=True):
        columns[name] = column
    columns["quality_flags"] = quality_flags
    columns["source_file"] = batch.source_index[index]  # indices into source_names; see observation_frame
    columns["file_offset"] = batch.offsets[index]
    columns["received_at"] = np.round(batch.received_at[index] * 1e6).astype("datetime64[us]")
    return columns


def quarantine_columns(
    batch: PacketBatch,
    gaps: list[list[tuple[int, int, QuarantineReason]]],
    buffers: list[np.ndarray],
    source_names: list[str],
) -> dict[str, list]:
    """Rejected packets and framing gaps, ordered by file then offset, with their raw octets."""
    records: list[tuple[int, int, int, str, str, int, bytes]] = []
    bad = np.flatnonzero(~batch.ok)
    rows = batch.packets.view(np.uint8).reshape(-1, fmt.PACKET_SIZE)
    for i in bad:
        records.append(
            (
                int(batch.source_index[i]),
                int(batch.offsets[i]),
                fmt.PACKET_SIZE,
                REASON_BY_CODE[batch.code[i]],
                DETAIL_BY_CODE[batch.code[i]],
                int(batch.apid[i]),
                rows[i].tobytes(),
            )
        )
    for index, file_gaps in enumerate(gaps):
        for offset, length, why in file_gaps:
            records.append(
                (
                    index,
                    offset,
                    length,
                    why.value,
                    f"{length} octets at offset {offset}",
                    -1,
                    buffers[index][offset : offset + length].tobytes(),
                )
            )
    records.sort(key=lambda r: (r[0], r[1]))
    return {
        "source_file": [source_names[r[0]] for r in records],
        "offset": [r[1] for r in records],
        "length": [r[2] for r in records],
        "reason": [r[3] for r in records],
        "detail": [r[4] for r in records],
        "satellite_id": [r[5] for r in records],
        "raw": [r[6] for r in records],
    }


def quarantine_frame(columns: dict[str, list]) -> pd.DataFrame:
    frame = pd.DataFrame(columns, columns=QUARANTINE_COLUMNS)
    return frame.astype({"offset": np.int64, "length": np.int64, "satellite_id": np.int32})


@dataclasses.dataclass(frozen=True)
class DecodedFile:
    """Result of decoding one downlink file.

    ``packets_in`` counts packet-sized units seen: every framed packet plus every quarantined octet run.
    """

    source_file: str
    observations: pd.DataFrame
    quarantine: pd.DataFrame
    packets_in: int
    bytes_in: int


def observation_frame(
    columns: dict[str, np.ndarray], source_names: list[str], with_received_at: bool = True
) -> pd.DataFrame:
    frame = pd.DataFrame({k: v for k, v in columns.items() if with_received_at or k != "received_at"})
    frame["source_file"] = np.asarray(source_names, dtype=object)[frame["source_file"].to_numpy()]
    frame["observed_at"] = frame["observed_at"].dt.tz_localize("UTC")
    if with_received_at:
        frame["received_at"] = frame["received_at"].dt.tz_localize("UTC")
    return frame


def decode_file(
    data: bytes,
    source_file: str,
    window_start: float | None = None,
    window_end: float | None = None,
    received_at: float | None = None,
) -> DecodedFile:
    """Decode and validate one downlink file into pandas frames.

    ``window_start``/``window_end`` (UNIX seconds, end exclusive) bound accepted observation times, i.e.
    the daily partition. ``received_at`` (UNIX seconds) is when the ground station received the file.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    batch, gaps = decode_packets([buf], [received_at], window_start, window_end)
    observations = observation_frame(
        observation_columns(batch, batch.ok), [source_file], with_received_at=received_at is not None
    )
    quarantine = quarantine_frame(quarantine_columns(batch, gaps, [buf], [source_file]))
    return DecodedFile(
        source_file=source_file,
        observations=observations,
        quarantine=quarantine,
        packets_in=len(batch) + len(gaps[0]),
        bytes_in=len(data),
    )


# --- duplicates and losses -----------------------------------------------------------------------------


def duplicate_mask(
    satellite_id: np.ndarray, sequence_count: np.ndarray, observed_us: np.ndarray
) -> np.ndarray:
    """True for every packet that repeats an earlier one (same satellite, sequence count and time)."""
    n = len(satellite_id)
    if n == 0:
        return np.zeros(0, dtype=bool)
    order = np.lexsort((sequence_count, observed_us, satellite_id))  # stable: first occurrence first
    same = (
        (np.diff(satellite_id[order]) == 0)
        & (np.diff(observed_us[order]) == 0)
        & (np.diff(sequence_count[order]) == 0)
    )
    duplicate = np.zeros(n, dtype=bool)
    duplicate[order[1:][same]] = True
    return duplicate


def _microseconds(timestamps: pd.Series) -> np.ndarray:
    return ((timestamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(1, "us")).to_numpy(np.int64)


def drop_duplicates(observations: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Remove retransmitted packets: same satellite, sequence count and observation time. Keeps the first."""
    duplicate = duplicate_mask(
        observations["satellite_id"].to_numpy(),
        observations["sequence_count"].to_numpy(),
        _microseconds(observations["observed_at"]),
    )
    return observations.loc[~duplicate].reset_index(drop=True), int(duplicate.sum())


def lost_packet_counts(
    satellite_id: np.ndarray, sequence_count: np.ndarray, observed_us: np.ndarray
) -> dict[int, int]:
    """Packets lost in transit per satellite, from gaps in the 14-bit sequence count.

    Counts wrap at 16,384; packets are ordered by observation time, which the fleet keeps monotonic.
    """
    if len(satellite_id) == 0:
        return {}
    order = np.lexsort((sequence_count, observed_us, satellite_id))
    sat = np.asarray(satellite_id)[order]
    seq = np.asarray(sequence_count, dtype=np.int64)[order]
    step = (np.diff(seq) % fmt.SEQUENCE_COUNT_MODULO) - 1
    gaps = np.where(sat[1:] == sat[:-1], np.clip(step, 0, None), 0)
    satellites, first = np.unique(sat, return_index=True)
    totals = np.add.reduceat(np.concatenate([[0], gaps]), first) if len(gaps) else np.zeros(len(satellites))
    return {int(s): int(t) for s, t in zip(satellites, totals, strict=True)}


def lost_packets_by_satellite(observations: pd.DataFrame) -> pd.Series:
    if observations.empty:
        return pd.Series(dtype=np.int64)
    counts = lost_packet_counts(
        observations["satellite_id"].to_numpy(),
        observations["sequence_count"].to_numpy(),
        _microseconds(observations["observed_at"]),
    )
    return pd.Series(counts, dtype=np.int64)
