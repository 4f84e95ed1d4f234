"""The numpy reference implementations of the telemetry decoder's compiled kernels, kept as their
specification: ``frame_packets_reference`` (framing, ``kernels.frame``), ``validate_packets`` (check codes,
``kernels.validate``) and ``observation_columns_reference`` (columns, ``kernels.extract``).

Only tests (tests/unit/telemetry/test_kernels.py compares each kernel with its reference under
hypothesis; test_ingest_fuzz.py asks ``validate_packets`` which packets a day may accept) and benchmarks
use them; product code runs the kernels (a unit test keeps it so). They are column-wise numpy: framing
checks the headers of a well-formed file with one strided comparison and walks damaged files run by run
(one Python iteration per *anomaly*, not per packet); the CRC runs over 16-bit columns of all packets at
once; validation is column-wise.
"""

from __future__ import annotations

import numpy as np

from astromined.telemetry import packet_format as fmt
from astromined.telemetry.decode import (
    CHECK_CODES,
    SCALAR_PAYLOAD_FIELDS,
    PacketBatch,
    QuarantineReason,
    reflectance_columns,
)

_HEADER_FIRST_OCTET = (fmt.PACKET_VERSION << 5) | (fmt.PACKET_TYPE_TELEMETRY << 4) | (1 << 3)
_LENGTH_HIGH, _LENGTH_LOW = fmt.DATA_LENGTH_FIELD >> 8, fmt.DATA_LENGTH_FIELD & 0xFF
_FLOAT32_RANGES = {
    field: (np.float32(low), np.float32(high)) for field, (low, high) in fmt.VALUE_RANGES.items()
}


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


def validate_packets(packets: np.ndarray, window_start: float | None, window_end: float | None) -> np.ndarray:
    """A check code per packet, first failing check wins: CRC, header, APID, time, value ranges.

    The numpy reference of ``kernels.validate`` (which the decoder runs).
    """
    n = len(packets)
    code = np.zeros(n, dtype=np.uint8)
    if n == 0:
        return code

    def flag(mask: np.ndarray, reason: QuarantineReason, detail: str = "") -> None:
        np.copyto(code, CHECK_CODES[(reason, detail)], where=mask & (code == 0))

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


# --- columns -------------------------------------------------------------------------------------------


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
