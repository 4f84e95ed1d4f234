"""Vectorized decoding and validation of downlink files.

Every octet of a file ends up either in a decoded packet or in a quarantine row with a reason and the
file offset, so the counts always reconcile. Per-packet Python loops are avoided: framing checks the
headers of a well-formed file with one strided comparison and walks damaged files run by run (one Python
iteration per *anomaly*, not per packet); the CRC runs over 16-bit columns of all packets at once;
validation is column-wise.

The hot loops (CRC, header and range checks, column extraction) run in compiled kernels
(``kernels.py``); the numpy implementations here (``validate_packets``, ``observation_columns_reference``)
are their specification and are kept for the tests that compare the two.

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
_HEADER_FIRST_OCTET = (fmt.PACKET_VERSION << 5) | (fmt.PACKET_TYPE_TELEMETRY << 4) | (1 << 3)
_LENGTH_HIGH, _LENGTH_LOW = fmt.DATA_LENGTH_FIELD >> 8, fmt.DATA_LENGTH_FIELD & 0xFF
_FLOAT32_RANGES = {
    field: (np.float32(low), np.float32(high)) for field, (low, high) in fmt.VALUE_RANGES.items()
}


def reflectance_columns() -> list[str]:
    return [f"reflectance_{i:02d}" for i in range(fmt.N_BANDS)]


# --- framing -------------------------------------------------------------------------------------------


def _header_candidates(buf: np.ndarray) -> np.ndarray:
    """Boolean mask: True at offsets where a well-formed primary header of our packet size starts."""
    n = len(buf)
    mask = np.zeros(n, dtype=bool)
    if n < fmt.PACKET_SIZE:
        return mask
    last = n - fmt.PACKET_SIZE + 1
    mask[:last] = (
        ((buf[:last] & 0xF8) == _HEADER_FIRST_OCTET)
        & (buf[4 : last + 4] == _LENGTH_HIGH)
        & (buf[5 : last + 5] == _LENGTH_LOW)
    )
    return mask


def _looks_like_header(buf: np.ndarray, pos: int) -> bool:
    return len(buf) - pos >= 6 and (int(buf[pos]) & 0xF8) == _HEADER_FIRST_OCTET


def _crc_ok_at(buf: np.ndarray, offset: int) -> bool:
    if offset + fmt.PACKET_SIZE > len(buf):
        return False
    row = buf[offset : offset + fmt.PACKET_SIZE]
    computed = int(fmt.crc16_ccitt(row[None, : fmt.CRC_OFFSET])[0])
    return computed == (int(row[fmt.CRC_OFFSET]) << 8 | int(row[fmt.CRC_OFFSET + 1]))


def _first_good_candidate(
    buf: np.ndarray, candidate_offsets: np.ndarray, after: int, before: int
) -> int | None:
    """The first header candidate in (after, before) whose packet CRC checks out."""
    lo = np.searchsorted(candidate_offsets, after, side="right")
    hi = np.searchsorted(candidate_offsets, before, side="left")
    for offset in candidate_offsets[lo:hi][:64]:
        if _crc_ok_at(buf, int(offset)):
            return int(offset)
    return None


_GAP_REASONS = {
    kernels.GAP_UNFRAMED: QuarantineReason.UNFRAMED_BYTES,
    kernels.GAP_TRUNCATED: QuarantineReason.TRUNCATED_PACKET,
}


def frame_packets(buf: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, QuarantineReason]]]:
    """Split a file into packet start offsets and quarantined octet runs ``(offset, length, reason)``.

    Compiled (``kernels.frame``): follows stride-aligned headers and scans octet by octet only after a
    disturbance. ``frame_packets_reference`` is the same algorithm in numpy, kept as its specification.
    """
    starts, gap_offset, gap_length, gap_reason = kernels.frame(buf)
    gaps = [
        (int(offset), int(length), _GAP_REASONS[int(reason)])
        for offset, length, reason in zip(gap_offset, gap_length, gap_reason, strict=True)
    ]
    return starts, gaps


def frame_packets_reference(buf: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, QuarantineReason]]]:
    """Split a file into packet start offsets and quarantined octet runs ``(offset, length, reason)``.

    Fast path: a file that is a whole number of packets, each with a well-formed header where expected,
    is framed with one strided check. Otherwise runs of stride-aligned headers are followed; after a
    disturbance the next packet is the first header candidate whose CRC checks out (falling back to the
    first candidate), so a header-like pattern inside a corrupt region cannot misalign the rest. A packet
    cut short inside a file (its CRC fails and a good packet starts before its nominal end) is reported
    as a truncated packet rather than swallowing the start of the next one.
    """
    n = len(buf)
    if n and n % fmt.PACKET_SIZE == 0:
        heads = buf.reshape(-1, fmt.PACKET_SIZE)
        if np.all(
            ((heads[:, 0] & 0xF8) == _HEADER_FIRST_OCTET)
            & (heads[:, 4] == _LENGTH_HIGH)
            & (heads[:, 5] == _LENGTH_LOW)
        ):
            return np.arange(0, n, fmt.PACKET_SIZE, dtype=np.int64), []

    candidates = _header_candidates(buf)
    candidate_offsets = np.flatnonzero(candidates)
    starts: list[np.ndarray] = []
    gaps: list[tuple[int, int, QuarantineReason]] = []
    pos = 0
    while pos < n:
        if pos + fmt.PACKET_SIZE <= n and candidates[pos]:
            run = candidates[pos :: fmt.PACKET_SIZE]
            broken = np.flatnonzero(~run)
            length = int(broken[0]) if len(broken) else len(run)
            last = pos + fmt.PACKET_SIZE * (length - 1)
            end = last + fmt.PACKET_SIZE
            if end < n and not _crc_ok_at(buf, last):
                # The run's last packet fails its CRC and the run breaks right after it: was it cut short?
                resume = _first_good_candidate(buf, candidate_offsets, last, end)
                if resume is not None:
                    starts.append(pos + fmt.PACKET_SIZE * np.arange(length - 1, dtype=np.int64))
                    gaps.append((last, resume - last, QuarantineReason.TRUNCATED_PACKET))
                    pos = resume
                    continue
            starts.append(pos + fmt.PACKET_SIZE * np.arange(length, dtype=np.int64))
            pos = end
            continue
        later_index = np.searchsorted(candidate_offsets, pos, side="right")
        if later_index == len(candidate_offsets):
            gaps.append((pos, n - pos, _gap_reason(buf, pos, n - pos)))
            break
        resume = _first_good_candidate(buf, candidate_offsets, pos, n)
        nxt = resume if resume is not None else int(candidate_offsets[later_index])
        gaps.append((pos, nxt - pos, _gap_reason(buf, pos, nxt - pos)))
        pos = nxt
    offsets = np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)
    return offsets, gaps


def _gap_reason(buf: np.ndarray, pos: int, length: int) -> QuarantineReason:
    if length < fmt.PACKET_SIZE and _looks_like_header(buf, pos):
        return QuarantineReason.TRUNCATED_PACKET
    return QuarantineReason.UNFRAMED_BYTES


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
_CODE = {check: code for code, check in enumerate(_CHECKS, start=1)}
assert _CODE[(QuarantineReason.CRC_MISMATCH, "")] == kernels.CODE_CRC
assert _CODE[(QuarantineReason.BAD_SEQUENCE_FLAGS, "")] == kernels.CODE_SEQUENCE_FLAGS
assert _CODE[(QuarantineReason.APID_OUT_OF_RANGE, "apid")] == kernels.CODE_APID
assert _CODE[(QuarantineReason.TIMESTAMP_OUTSIDE_PARTITION, "observed_at")] == kernels.CODE_TIMESTAMP
assert all(
    _CODE[(QuarantineReason.VALUE_OUT_OF_RANGE, field)] == kernels.CODE_FIRST_RANGE + k
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


def validate_packets(packets: np.ndarray, window_start: float | None, window_end: float | None) -> np.ndarray:
    """A check code per packet, first failing check wins: CRC, header, APID, time, value ranges.

    The numpy reference of ``kernels.validate`` (which the decoder runs).
    """
    n = len(packets)
    code = np.zeros(n, dtype=np.uint8)
    if n == 0:
        return code

    def flag(mask: np.ndarray, reason: QuarantineReason, detail: str = "") -> None:
        np.copyto(code, _CODE[(reason, detail)], where=mask & (code == 0))

    rows = packets.view(np.uint8).reshape(n, fmt.PACKET_SIZE)
    flag(fmt.crc16_ccitt(rows[:, : fmt.CRC_OFFSET]) != packets["crc"], QuarantineReason.CRC_MISMATCH)
    flag(
        (packets["primary"]["word1"] >> 14) != fmt.SEQUENCE_FLAGS_UNSEGMENTED,
        QuarantineReason.BAD_SEQUENCE_FLAGS,
    )
    apid = packets["primary"]["word0"] & 0x07FF
    flag((apid < fmt.MIN_APID) | (apid > fmt.MAX_APID), QuarantineReason.APID_OUT_OF_RANGE, "apid")
    if window_start is not None and window_end is not None:
        times = fmt.from_ccsds_time(packets["secondary"]["coarse_time"], packets["secondary"]["fine_time"])
        outside = (times < window_start) | (times >= window_end)
        flag(outside, QuarantineReason.TIMESTAMP_OUTSIDE_PARTITION, "observed_at")
    payload = packets["payload"]
    for field, (low, high) in _FLOAT32_RANGES.items():
        # Compare at wire precision (float32): a bound such as 0.01 is not exactly representable, and a
        # value inside the documented range must not be rejected because encoding rounded it past the bound.
        values = payload[field].astype(np.float32)
        inside = (values >= low) & (values <= high)  # NaN is outside
        if values.ndim > 1:
            bad = ~np.all(inside, axis=1)
        elif field == "radar_albedo":
            bad = ~inside & ~np.isnan(values)  # NaN means "not measured"
        else:
            bad = ~inside
        flag(bad, QuarantineReason.VALUE_OUT_OF_RANGE, field)
    return code


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


def observation_columns_reference(batch: PacketBatch, mask: np.ndarray) -> dict[str, np.ndarray]:
    """The numpy reference of ``observation_columns`` (one byte-swapping copy per field)."""
    packets = batch.packets[mask]
    payload = packets["payload"]
    columns: dict[str, np.ndarray] = {
        "satellite_id": batch.apid[mask],
        "sequence_count": batch.sequence_count[mask],
        "observed_at": np.round(batch.times[mask] * 1e6).astype("datetime64[us]"),
        "asteroid_id": payload["asteroid_id"].astype(np.int64),
    }
    for field in SCALAR_PAYLOAD_FIELDS:
        columns[field] = payload[field].astype(np.float32)
    reflectance = payload["reflectance"].astype(np.float32)
    for i, name in enumerate(reflectance_columns()):
        columns[name] = reflectance[:, i]
    columns["quality_flags"] = payload["quality_flags"].astype(np.int32)
    columns["source_file"] = batch.source_index[mask]
    columns["file_offset"] = batch.offsets[mask]
    columns["received_at"] = np.round(batch.received_at[mask] * 1e6).astype("datetime64[us]")
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
