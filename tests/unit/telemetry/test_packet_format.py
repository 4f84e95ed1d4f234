"""The CCSDS Space Packet layout: CRC, CUC time and the primary header bit by bit (CCSDS 133.0-B)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astromined.telemetry import packet_format as fmt
from astromined.telemetry.encode import encode_packets

FINE_RESOLUTION_S = 1.0 / fmt.FINE_TIME_UNITS_PER_SECOND
MAX_UNIX_SECOND = 2**32 - 1 - fmt.UNIX_EPOCH_IN_CCSDS_SECONDS


def _payload(n: int = 1) -> np.ndarray:
    payload = np.zeros(n, dtype=fmt.PAYLOAD_DTYPE)
    payload["asteroid_id"] = np.arange(1, n + 1)
    payload["range_km"] = 1234.5
    payload["phase_angle_deg"] = 12.0
    payload["apparent_magnitude"] = 15.0
    payload["reflectance"] = 0.2
    payload["thermal_flux"] = 1.0e3
    payload["radar_albedo"] = 0.3
    payload["lightcurve_amplitude_mag"] = 0.2
    payload["rotation_period_h"] = 6.0
    payload["sensor_temperature_k"] = 180.0
    return payload


def _bits(byte: int, high: int, width: int) -> int:
    """``width`` bits of ``byte`` starting at bit ``high`` (7 = most significant)."""
    return (byte >> (high - width + 1)) & ((1 << width) - 1)


# --- sizes and dtypes -----------------------------------------------------------------------------------


def test_packet_is_100_octets_with_the_documented_field_offsets() -> None:
    assert fmt.PACKET_SIZE == 100
    assert fmt.PACKET_DTYPE.itemsize == 100
    assert fmt.PRIMARY_HEADER_DTYPE.itemsize == 6
    assert fmt.SECONDARY_HEADER_DTYPE.itemsize == 6
    assert fmt.PAYLOAD_DTYPE.itemsize == 86
    assert fmt.DATA_LENGTH_FIELD == 93
    assert fmt.CRC_OFFSET == 98
    offsets = {name: fmt.PACKET_DTYPE.fields[name][1] for name in fmt.PACKET_DTYPE.names}
    assert offsets == {"primary": 0, "secondary": 6, "payload": 12, "crc": 98}


def test_payload_layout_is_big_endian_with_documented_offsets() -> None:
    expected = {
        "asteroid_id": (0, ">u4"),
        "range_km": (4, ">f4"),
        "phase_angle_deg": (8, ">f4"),
        "apparent_magnitude": (12, ">f4"),
        "reflectance": (16, ">f4"),
        "thermal_flux": (64, ">f4"),
        "radar_albedo": (68, ">f4"),
        "lightcurve_amplitude_mag": (72, ">f4"),
        "rotation_period_h": (76, ">f4"),
        "sensor_temperature_k": (80, ">f4"),
        "quality_flags": (84, ">u2"),
    }
    assert list(fmt.PAYLOAD_DTYPE.names) == list(expected)
    for name, (offset, base) in expected.items():
        field_dtype, field_offset = fmt.PAYLOAD_DTYPE.fields[name][:2]
        assert field_offset == offset, name
        assert (field_dtype.base if field_dtype.shape else field_dtype) == np.dtype(base), name
    assert fmt.PAYLOAD_DTYPE.fields["reflectance"][0].shape == (fmt.N_BANDS,)


def test_band_wavelengths_are_increasing_and_normalized_at_055_um() -> None:
    assert len(fmt.BAND_WAVELENGTHS_UM) == fmt.N_BANDS == 12
    assert np.all(np.diff(fmt.BAND_WAVELENGTHS_UM) > 0)
    assert fmt.BAND_WAVELENGTHS_UM[fmt.NORMALIZATION_BAND] == pytest.approx(0.55)
    assert fmt.BAND_WAVELENGTHS_UM[0] == pytest.approx(0.45)
    assert fmt.BAND_WAVELENGTHS_UM[-1] == pytest.approx(2.45)


def test_value_ranges_cover_every_float_payload_field() -> None:
    float_fields = {
        name for name in fmt.PAYLOAD_DTYPE.names if fmt.PAYLOAD_DTYPE.fields[name][0].base.kind == "f"
    }
    assert set(fmt.VALUE_RANGES) == float_fields
    for low, high in fmt.VALUE_RANGES.values():
        assert low < high


# --- CRC-16/CCITT-FALSE ---------------------------------------------------------------------------------


def _crc_bitwise(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def test_crc_known_vector() -> None:
    row = np.frombuffer(b"123456789", dtype=np.uint8)[None, :]
    crc = fmt.crc16_ccitt(row)
    assert crc.dtype == np.uint16
    assert int(crc[0]) == 0x29B1


def test_crc_of_no_bytes_is_the_initial_value() -> None:
    assert int(fmt.crc16_ccitt(np.zeros((1, 0), dtype=np.uint8))[0]) == 0xFFFF


def test_crc_table_first_entries() -> None:
    assert fmt.CRC16_TABLE[0] == 0x0000
    assert fmt.CRC16_TABLE[1] == 0x1021
    assert fmt.CRC16_TABLE[255] == 0x1EF0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(min_size=20, max_size=20), min_size=1, max_size=8))
def test_crc_vectorized_matches_bitwise_reference_row_by_row(rows: list[bytes]) -> None:
    matrix = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), 20)
    assert [int(c) for c in fmt.crc16_ccitt(matrix)] == [_crc_bitwise(r) for r in rows]


def test_crc_detects_every_single_bit_flip_in_a_packet() -> None:
    packet = encode_packets(7, 1, 1.7e9, _payload()).view(np.uint8).reshape(1, fmt.PACKET_SIZE)
    body = packet[:, : fmt.CRC_OFFSET]
    reference = int(fmt.crc16_ccitt(body)[0])
    flipped = np.repeat(body, fmt.CRC_OFFSET * 8, axis=0)
    idx = np.arange(fmt.CRC_OFFSET * 8)
    flipped[idx, idx // 8] ^= (1 << (idx % 8)).astype(np.uint8)
    assert np.all(fmt.crc16_ccitt(flipped) != reference)


# --- CCSDS Unsegmented Time Code --------------------------------------------------------------------------


def test_ccsds_epoch_offset() -> None:
    # 1958-01-01 → 1970-01-01: 12 years, 3 of them leap (1960, 1964, 1968), no leap seconds.
    assert fmt.UNIX_EPOCH_IN_CCSDS_SECONDS == (12 * 365 + 3) * 86_400 == 378_691_200
    coarse, fine = fmt.to_ccsds_time(np.array([0.0]))
    assert int(coarse[0]) == 378_691_200
    assert int(fine[0]) == 0


def test_cuc_known_value() -> None:
    when = dt.datetime(2031, 3, 14, 15, 9, 26, tzinfo=dt.UTC).timestamp() + 0.5
    coarse, fine = fmt.to_ccsds_time(np.array([when]))
    expected = int((dt.datetime(2031, 3, 14, 15, 9, 26, tzinfo=dt.UTC) - fmt.CCSDS_EPOCH).total_seconds())
    assert int(coarse[0]) == expected
    assert int(fine[0]) == 32_768
    assert coarse.dtype == np.uint32
    assert fine.dtype == np.uint16


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        # Coarse time is 32 bits: it covers 1958-01-01 up to 2094-02-06T06:28:15Z.
        st.floats(min_value=0.0, max_value=float(MAX_UNIX_SECOND), allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=20,
    )
)
def test_cuc_round_trip(unix_seconds: list[float]) -> None:
    t = np.asarray(unix_seconds, dtype=np.float64)
    coarse, fine = fmt.to_ccsds_time(t)
    assert np.all(fine <= fmt.FINE_TIME_UNITS_PER_SECOND - 1)
    np.testing.assert_array_equal(
        coarse.astype(np.int64), np.floor(t).astype(np.int64) + fmt.UNIX_EPOCH_IN_CCSDS_SECONDS
    )
    back = fmt.from_ccsds_time(coarse, fine)
    # Never earlier than the whole second, never later than the next second; within one fine tick.
    assert np.all(back >= np.floor(t))
    assert np.all(back < np.floor(t) + 1.0)
    assert np.all(np.abs(back - t) <= FINE_RESOLUTION_S * 1.0001)


@settings(max_examples=50, deadline=None)
@given(
    st.integers(min_value=0, max_value=MAX_UNIX_SECOND),
    st.integers(min_value=0, max_value=fmt.FINE_TIME_UNITS_PER_SECOND - 1),
)
def test_cuc_exact_ticks_round_trip_exactly(whole: int, ticks: int) -> None:
    t = np.array([whole + ticks / fmt.FINE_TIME_UNITS_PER_SECOND])
    coarse, fine = fmt.to_ccsds_time(t)
    assert int(coarse[0]) == whole + fmt.UNIX_EPOCH_IN_CCSDS_SECONDS
    assert int(fine[0]) == ticks
    assert fmt.from_ccsds_time(coarse, fine)[0] == t[0]


def test_cuc_fine_time_never_carries_into_the_next_second() -> None:
    t = np.array([1_000.0 + 0.999_999])
    coarse, fine = fmt.to_ccsds_time(t)
    assert int(coarse[0]) == 1_000 + fmt.UNIX_EPOCH_IN_CCSDS_SECONDS
    assert int(fine[0]) == fmt.FINE_TIME_UNITS_PER_SECOND - 1


# --- primary header, byte by byte -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("apid", "sequence_count"),
    [(1, 0), (421, 5), (500, 16_383), (256, 16_384), (37, 16_384 + 77), (499, 3 * 16_384 + 12_345)],
)
def test_primary_header_bit_layout(apid: int, sequence_count: int) -> None:
    unix_time = 1_900_000_000.25
    packet = encode_packets(np.array([apid]), np.array([sequence_count]), np.array([unix_time]), _payload())
    raw = packet.tobytes()
    assert len(raw) == fmt.PACKET_SIZE == 100
    b = list(raw)

    # Octets 0-1: version (3) | type (1) | secondary header flag (1) | APID (11).
    assert _bits(b[0], 7, 3) == 0b000  # packet version number
    assert _bits(b[0], 4, 1) == 0  # packet type: telemetry
    assert _bits(b[0], 3, 1) == 1  # secondary header present
    assert (_bits(b[0], 2, 3) << 8) | b[1] == apid
    # Octets 2-3: sequence flags (2) | sequence count (14), which wraps at 16384.
    assert _bits(b[2], 7, 2) == 0b11
    count = (_bits(b[2], 5, 6) << 8) | b[3]
    assert count == sequence_count % 16_384
    # Octets 4-5: packet data length = data-field octets - 1.
    assert (b[4] << 8) | b[5] == 93 == fmt.PACKET_SIZE - 6 - 1
    # Octets 6-11: CUC time, 4 octets coarse + 2 octets fine, big-endian.
    coarse = int.from_bytes(raw[6:10], "big")
    fine = int.from_bytes(raw[10:12], "big")
    assert coarse == 1_900_000_000 + fmt.UNIX_EPOCH_IN_CCSDS_SECONDS
    assert fine == 16_384  # 0.25 s
    # Octets 12-97: payload; the asteroid id leads, big-endian.
    assert int.from_bytes(raw[12:16], "big") == 1
    # Octets 98-99: CRC-16/CCITT-FALSE over octets 0..97, big-endian.
    assert int.from_bytes(raw[98:100], "big") == _crc_bitwise(raw[:98])


def test_payload_floats_are_big_endian_ieee754() -> None:
    payload = _payload()
    payload["range_km"] = 1.5
    payload["quality_flags"] = fmt.QUALITY_LOW_SNR | fmt.QUALITY_SATURATED
    raw = encode_packets(3, 0, 0.0, payload).tobytes()
    assert raw[16:20] == np.array([1.5], dtype=">f4").tobytes() == b"\x3f\xc0\x00\x00"
    assert raw[96:98] == b"\x00\x05"


def test_header_words_helpers() -> None:
    assert fmt.word0(1) == 0x0801
    assert fmt.word0(500) == 0x0800 | 500
    assert int(fmt.word1(0)) == 0xC000
    assert int(fmt.word1(16_384)) == 0xC000
    assert int(fmt.word1(16_383)) == 0xFFFF


def test_encoder_vectorizes_and_broadcasts_scalars() -> None:
    packets = encode_packets(9, np.arange(16_382, 16_387), 100.0, _payload(5))
    assert packets.dtype == fmt.PACKET_DTYPE
    assert len(packets.tobytes()) == 5 * fmt.PACKET_SIZE
    counts = packets["primary"]["word1"] & 0x3FFF
    assert counts.tolist() == [16_382, 16_383, 0, 1, 2]
    assert np.all(packets["primary"]["word0"] & 0x07FF == 9)


@pytest.mark.parametrize("apid", [0, 501, 2047, -1])
def test_encoder_refuses_apids_outside_the_fleet(apid: int) -> None:
    with pytest.raises(ValueError, match="APID"):
        encode_packets(np.array([apid]), np.array([0]), np.array([0.0]), _payload())
