"""The AstroMined downlink wire format: CCSDS Space Packets (CCSDS 133.0-B-2), defined once.

Both the fleet simulator's encoder and the ground decoder use the structured numpy dtypes below, so the
layout cannot drift between them. docs/telemetry-format.md describes the same layout for people.

One packet is exactly ``PACKET_SIZE`` (100) octets::

    offset size field
    0      2    packet version (3 bits, =0) | type (1 bit, 0=telemetry) | secondary header flag (1 bit, =1)
                | APID (11 bits, = satellite id 1..500)
    2      2    sequence flags (2 bits, =0b11 unsegmented) | sequence count (14 bits, wraps at 16384)
    4      2    packet data length = octets in the data field - 1 (= 93)
    6      4    secondary header: CCSDS Unsegmented Time Code, coarse time (seconds since 1958-01-01)
    10     2    secondary header: CUC fine time (1/65536 s)
    12     86   observation payload (big-endian, see PAYLOAD_DTYPE)
    98     2    packet error control: CRC-16/CCITT (poly 0x1021, init 0xFFFF) over octets 0..97

All multi-octet fields are big-endian. Time is counted in UTC seconds since the CCSDS level-1 epoch
1958-01-01T00:00:00 without leap seconds (the fleet's clocks are steered to UTC).
"""

from __future__ import annotations

import datetime as dt

import numpy as np

N_BANDS = 12
# Band centres in micrometres; 0.55 µm is the normalization band (index 1).
BAND_WAVELENGTHS_UM: tuple[float, ...] = (
    0.45,
    0.55,
    0.65,
    0.75,
    0.85,
    0.95,
    1.05,
    1.25,
    1.50,
    1.75,
    2.05,
    2.45,
)
NORMALIZATION_BAND = 1
assert len(BAND_WAVELENGTHS_UM) == N_BANDS

PACKET_VERSION = 0
PACKET_TYPE_TELEMETRY = 0
SEQUENCE_FLAGS_UNSEGMENTED = 0b11
SEQUENCE_COUNT_MODULO = 1 << 14
MIN_APID = 1
MAX_APID = 500

CCSDS_EPOCH = dt.datetime(1958, 1, 1, tzinfo=dt.UTC)
UNIX_EPOCH_IN_CCSDS_SECONDS = int((dt.datetime(1970, 1, 1, tzinfo=dt.UTC) - CCSDS_EPOCH).total_seconds())
FINE_TIME_UNITS_PER_SECOND = 1 << 16

PRIMARY_HEADER_DTYPE = np.dtype([("word0", ">u2"), ("word1", ">u2"), ("data_length", ">u2")])
SECONDARY_HEADER_DTYPE = np.dtype([("coarse_time", ">u4"), ("fine_time", ">u2")])

# One observation of one asteroid by one satellite. NaN in radar_albedo means "not measured".
PAYLOAD_DTYPE = np.dtype(
    [
        ("asteroid_id", ">u4"),
        ("range_km", ">f4"),
        ("phase_angle_deg", ">f4"),
        ("apparent_magnitude", ">f4"),
        ("reflectance", ">f4", (N_BANDS,)),
        ("thermal_flux", ">f4"),
        ("radar_albedo", ">f4"),
        ("lightcurve_amplitude_mag", ">f4"),
        ("rotation_period_h", ">f4"),
        ("sensor_temperature_k", ">f4"),
        ("quality_flags", ">u2"),
    ]
)

PACKET_DTYPE = np.dtype(
    [
        ("primary", PRIMARY_HEADER_DTYPE),
        ("secondary", SECONDARY_HEADER_DTYPE),
        ("payload", PAYLOAD_DTYPE),
        ("crc", ">u2"),
    ]
)
PACKET_SIZE = PACKET_DTYPE.itemsize
DATA_FIELD_LENGTH = PACKET_SIZE - PRIMARY_HEADER_DTYPE.itemsize
DATA_LENGTH_FIELD = DATA_FIELD_LENGTH - 1
CRC_OFFSET = PACKET_SIZE - 2
assert PACKET_SIZE == 100 and DATA_LENGTH_FIELD == 93

# Quality flag bits set on board.
QUALITY_SATURATED = 1 << 0
QUALITY_STRAY_LIGHT = 1 << 1
QUALITY_LOW_SNR = 1 << 2

# Physical validity ranges for payload fields (inclusive); values outside are quarantined.
VALUE_RANGES: dict[str, tuple[float, float]] = {
    "range_km": (1.0, 1.0e7),
    "phase_angle_deg": (0.0, 180.0),
    "apparent_magnitude": (-30.0, 40.0),
    "reflectance": (0.0, 2.0),
    "thermal_flux": (0.0, 1.0e12),
    "radar_albedo": (0.0, 1.5),
    "lightcurve_amplitude_mag": (0.0, 3.0),
    "rotation_period_h": (0.01, 10_000.0),
    "sensor_temperature_k": (50.0, 400.0),
}


def word0(apid: np.ndarray | int) -> np.ndarray | int:
    """First header word for a telemetry packet with a secondary header."""
    return (PACKET_VERSION << 13) | (PACKET_TYPE_TELEMETRY << 12) | (1 << 11) | apid


def word1(sequence_count: np.ndarray | int) -> np.ndarray | int:
    return (SEQUENCE_FLAGS_UNSEGMENTED << 14) | (np.asarray(sequence_count) % SEQUENCE_COUNT_MODULO)


def _crc16_tables() -> tuple[np.ndarray, np.ndarray]:
    """Lookup tables for CRC-16/CCITT: one octet at a time (256 entries) and two at a time (65,536)."""
    table8 = np.zeros(256, dtype=np.uint16)
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table8[byte] = crc & 0xFFFF
    # For a 16-bit CRC, feeding two octets is one lookup: crc' = T16[crc ^ (b0 << 8 | b1)].
    index = np.arange(65536, dtype=np.uint32)
    table16 = (table8[(table8[index >> 8] >> 8) ^ (index & 0xFF)] ^ (table8[index >> 8] << 8)).astype(
        np.uint16
    )
    return table8, table16


CRC16_TABLE, CRC16_TABLE_16 = _crc16_tables()
CRC_CHUNK_ROWS = 16_384


def crc16_ccitt(rows: np.ndarray) -> np.ndarray:
    """CRC-16/CCITT-FALSE of each row of a 2-D uint8 array, vectorized across rows.

    The loop runs over 16-bit columns (49 for a packet), never over packets: each step is one XOR and
    one gather from a 128 KiB table on arrays as long as the batch.
    """
    rows = np.asarray(rows, dtype=np.uint8)
    n, width = rows.shape
    if n > CRC_CHUNK_ROWS:  # keep each pass's working set in the CPU cache
        return np.concatenate(
            [crc16_ccitt(rows[s : s + CRC_CHUNK_ROWS]) for s in range(0, n, CRC_CHUNK_ROWS)]
        )
    crc = np.full(n, 0xFFFF, dtype=np.uint16)
    if width % 2:
        crc = (crc << 8) ^ CRC16_TABLE[(crc >> 8) ^ rows[:, 0]]
        rows = rows[:, 1:]
    if rows.shape[1] == 0 or n == 0:
        return crc
    words = np.ascontiguousarray(rows).view(">u2").T.astype(np.uint16)
    for column in words:
        np.bitwise_xor(crc, column, out=crc)
        np.take(CRC16_TABLE_16, crc, out=crc)
    return crc


def to_ccsds_time(unix_seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split UNIX seconds (float) into CUC coarse seconds since 1958 and 1/65536 s fine time."""
    unix_seconds = np.asarray(unix_seconds, dtype=np.float64)
    whole = np.floor(unix_seconds)
    fine = np.minimum(
        np.round((unix_seconds - whole) * FINE_TIME_UNITS_PER_SECOND), FINE_TIME_UNITS_PER_SECOND - 1
    )
    coarse = whole.astype(np.int64) + UNIX_EPOCH_IN_CCSDS_SECONDS
    return coarse.astype(np.uint32), fine.astype(np.uint16)


def from_ccsds_time(coarse: np.ndarray, fine: np.ndarray) -> np.ndarray:
    """CUC time back to UNIX seconds (float64)."""
    return (np.asarray(coarse, dtype=np.int64) - UNIX_EPOCH_IN_CCSDS_SECONDS) + np.asarray(
        fine, dtype=np.float64
    ) / FINE_TIME_UNITS_PER_SECOND
