"""Vectorized decoding and validation of downlink files.

Every octet of a file ends up either in a decoded packet or in a quarantine row with a reason and the
file offset, so the counts always reconcile. Per-packet Python loops are avoided: framing walks runs of
well-formed packets with strided numpy checks (one Python iteration per *anomaly*, not per packet), and
validation is column-wise.
"""

from __future__ import annotations

import dataclasses
from enum import StrEnum

import numpy as np
import pandas as pd

from astromined.telemetry import packet_format as fmt


class QuarantineReason(StrEnum):
    """Why a packet (or a run of octets) was not accepted. Values are stable: dashboards key on them."""

    UNFRAMED_BYTES = "unframed_bytes"  # octets that do not start a recognizable packet header
    TRUNCATED_PACKET = "truncated_packet"  # a header was found but the file ends before the packet does
    CRC_MISMATCH = "crc_mismatch"
    BAD_SEQUENCE_FLAGS = "bad_sequence_flags"
    APID_OUT_OF_RANGE = "apid_out_of_range"
    TIMESTAMP_OUTSIDE_PARTITION = "timestamp_outside_partition"
    VALUE_OUT_OF_RANGE = "value_out_of_range"


QUARANTINE_COLUMNS = ["source_file", "offset", "length", "reason", "detail", "satellite_id", "raw"]


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


def _header_candidates(buf: np.ndarray) -> np.ndarray:
    """Boolean mask: True at offsets where a well-formed primary header of our packet size starts."""
    n = len(buf)
    mask = np.zeros(n, dtype=bool)
    if n < fmt.PACKET_SIZE:
        return mask
    last = n - fmt.PACKET_SIZE + 1
    expected_first = (fmt.PACKET_VERSION << 5) | (fmt.PACKET_TYPE_TELEMETRY << 4) | (1 << 3)
    mask[:last] = (
        ((buf[:last] & 0xF8) == expected_first)
        & (buf[4 : last + 4] == (fmt.DATA_LENGTH_FIELD >> 8))
        & (buf[5 : last + 5] == (fmt.DATA_LENGTH_FIELD & 0xFF))
    )
    return mask


def _crc_ok_at(buf: np.ndarray, offset: int) -> bool:
    row = buf[offset : offset + fmt.PACKET_SIZE]
    computed = int(fmt.crc16_ccitt(row[None, : fmt.CRC_OFFSET])[0])
    return computed == (int(row[fmt.CRC_OFFSET]) << 8 | int(row[fmt.CRC_OFFSET + 1]))


def frame_packets(buf: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, QuarantineReason]]]:
    """Split a file into packet start offsets and quarantined octet runs ``(offset, length, reason)``.

    After a disturbance the next packet is the first header candidate whose CRC checks out (falling back
    to the first candidate), so a header-like pattern inside a corrupt region cannot misalign the rest.
    """
    n = len(buf)
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
            starts.append(pos + fmt.PACKET_SIZE * np.arange(length, dtype=np.int64))
            pos += fmt.PACKET_SIZE * length
            continue
        later = candidate_offsets[np.searchsorted(candidate_offsets, pos, side="right") :]
        if len(later) == 0:
            reason = (
                QuarantineReason.TRUNCATED_PACKET
                if n - pos < fmt.PACKET_SIZE and _looks_like_header(buf, pos)
                else QuarantineReason.UNFRAMED_BYTES
            )
            gaps.append((pos, n - pos, reason))
            break
        nxt = next((int(c) for c in later[:64] if _crc_ok_at(buf, int(c))), int(later[0]))
        reason = (
            QuarantineReason.TRUNCATED_PACKET
            if nxt - pos < fmt.PACKET_SIZE and _looks_like_header(buf, pos)
            else QuarantineReason.UNFRAMED_BYTES
        )
        gaps.append((pos, nxt - pos, reason))
        pos = nxt
    offsets = np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)
    return offsets, gaps


def _looks_like_header(buf: np.ndarray, pos: int) -> bool:
    if len(buf) - pos < 6:
        return False
    expected_first = (fmt.PACKET_VERSION << 5) | (fmt.PACKET_TYPE_TELEMETRY << 4) | (1 << 3)
    return (int(buf[pos]) & 0xF8) == expected_first


def decode_file(
    data: bytes,
    source_file: str,
    window_start: float | None = None,
    window_end: float | None = None,
    received_at: float | None = None,
) -> DecodedFile:
    """Decode and validate one downlink file.

    ``window_start``/``window_end`` (UNIX seconds, end exclusive) bound accepted observation times, i.e.
    the daily partition. ``received_at`` (UNIX seconds) is when the ground station received the file.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    offsets, gaps = frame_packets(buf)
    rows = (
        buf[offsets[:, None] + np.arange(fmt.PACKET_SIZE)]
        if len(offsets)
        else np.zeros((0, fmt.PACKET_SIZE), dtype=np.uint8)
    )
    packets = rows.copy().view(fmt.PACKET_DTYPE).reshape(-1)

    apid = (packets["primary"]["word0"] & 0x07FF).astype(np.int32)
    seq_flags = packets["primary"]["word1"] >> 14
    seq_count = (packets["primary"]["word1"] & 0x3FFF).astype(np.int32)
    times = fmt.from_ccsds_time(packets["secondary"]["coarse_time"], packets["secondary"]["fine_time"])
    payload = packets["payload"]

    reason = np.full(len(packets), "", dtype=object)
    detail = np.full(len(packets), "", dtype=object)

    def flag(mask: np.ndarray, why: QuarantineReason, text: str | np.ndarray = "") -> None:
        fresh = mask & (reason == "")
        reason[fresh] = why.value
        detail[fresh] = text if isinstance(text, str) else text[fresh]

    crc = fmt.crc16_ccitt(rows[:, : fmt.CRC_OFFSET]) if len(rows) else np.zeros(0, np.uint16)
    flag(crc != packets["crc"], QuarantineReason.CRC_MISMATCH)
    flag(seq_flags != fmt.SEQUENCE_FLAGS_UNSEGMENTED, QuarantineReason.BAD_SEQUENCE_FLAGS)
    flag((apid < fmt.MIN_APID) | (apid > fmt.MAX_APID), QuarantineReason.APID_OUT_OF_RANGE, "apid")
    if window_start is not None and window_end is not None:
        outside = (times < window_start) | (times >= window_end)
        flag(outside, QuarantineReason.TIMESTAMP_OUTSIDE_PARTITION, "observed_at")
    for field, bounds in fmt.VALUE_RANGES.items():
        # Compare at wire precision (float32): a bound such as 0.01 is not exactly representable, and a value
        # inside the documented range must not be rejected because encoding rounded it past the bound.
        low, high = np.float32(bounds[0]), np.float32(bounds[1])
        values = payload[field].astype(np.float32)
        if values.ndim > 1:
            bad = ~np.all((values >= low) & (values <= high), axis=1)
        elif field == "radar_albedo":
            bad = ~np.isnan(values) & ~((values >= low) & (values <= high))
        else:
            bad = ~((values >= low) & (values <= high))  # NaN fails too
        flag(bad, QuarantineReason.VALUE_OUT_OF_RANGE, field)

    ok = reason == ""
    observations = _observation_frame(
        packets[ok], apid[ok], seq_count[ok], times[ok], source_file, offsets[ok]
    )
    if received_at is not None:
        observations["received_at"] = pd.Timestamp(received_at, unit="s", tz="UTC")

    bad = ~ok
    quarantine = pd.DataFrame(
        {
            "source_file": source_file,
            "offset": offsets[bad].astype(np.int64),
            "length": np.full(int(bad.sum()), fmt.PACKET_SIZE, dtype=np.int64),
            "reason": reason[bad].astype(str),
            "detail": detail[bad].astype(str),
            "satellite_id": apid[bad].astype(np.int32),
            "raw": [bytes(r) for r in rows[bad]],
        },
        columns=QUARANTINE_COLUMNS,
    )
    if gaps:
        gap_frame = pd.DataFrame(
            {
                "source_file": source_file,
                "offset": [g[0] for g in gaps],
                "length": [g[1] for g in gaps],
                "reason": [g[2].value for g in gaps],
                "detail": [f"{g[1]} octets at offset {g[0]}" for g in gaps],
                "satellite_id": np.full(len(gaps), -1, dtype=np.int32),
                "raw": [bytes(buf[g[0] : g[0] + g[1]]) for g in gaps],
            }
        )
        quarantine = pd.concat([quarantine, gap_frame], ignore_index=True).sort_values("offset")
        quarantine = quarantine.reset_index(drop=True)
    return DecodedFile(
        source_file=source_file,
        observations=observations,
        quarantine=quarantine,
        packets_in=len(packets) + len(gaps),
        bytes_in=len(data),
    )


def reflectance_columns() -> list[str]:
    return [f"reflectance_{i:02d}" for i in range(fmt.N_BANDS)]


def _observation_frame(
    packets: np.ndarray,
    apid: np.ndarray,
    seq_count: np.ndarray,
    times: np.ndarray,
    source_file: str,
    offsets: np.ndarray,
) -> pd.DataFrame:
    payload = packets["payload"]
    columns: dict[str, object] = {
        "satellite_id": apid.astype(np.int32),
        "sequence_count": seq_count.astype(np.int32),
        "observed_at": pd.to_datetime(np.round(times * 1e6).astype(np.int64), unit="us", utc=True),
        "asteroid_id": payload["asteroid_id"].astype(np.int64),
    }
    for field in fmt.PAYLOAD_DTYPE.names:
        if field in ("asteroid_id", "reflectance", "quality_flags"):
            continue
        columns[field] = payload[field].astype(np.float32)
    reflectance = payload["reflectance"].astype(np.float32)
    for i, name in enumerate(reflectance_columns()):
        columns[name] = reflectance[:, i]
    columns["quality_flags"] = payload["quality_flags"].astype(np.int32)
    columns["source_file"] = source_file
    columns["file_offset"] = offsets.astype(np.int64)
    return pd.DataFrame(columns)


def drop_duplicates(observations: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Remove retransmitted packets: same satellite, sequence count and observation time. Keeps the first."""
    key = ["satellite_id", "sequence_count", "observed_at"]
    dup = observations.duplicated(subset=key, keep="first")
    return observations.loc[~dup].reset_index(drop=True), int(dup.sum())


def lost_packets_by_satellite(observations: pd.DataFrame) -> pd.Series:
    """Estimate packets lost in transit per satellite from gaps in the 14-bit sequence count.

    Counts wrap at 16,384; packets are ordered by observation time, which the fleet keeps monotonic.
    """
    if observations.empty:
        return pd.Series(dtype=np.int64)
    ordered = observations.sort_values(["satellite_id", "observed_at", "sequence_count"])
    seq = ordered["sequence_count"].to_numpy(np.int64)
    sat = ordered["satellite_id"].to_numpy()
    step = (np.diff(seq) % fmt.SEQUENCE_COUNT_MODULO) - 1
    same = sat[1:] == sat[:-1]
    gaps = np.where(same, np.clip(step, 0, None), 0)
    return pd.Series(gaps, index=sat[1:]).groupby(level=0).sum().reindex(np.unique(sat), fill_value=0)
