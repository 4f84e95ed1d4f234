"""Decoder: encoder round trip, every quarantine reason with its file offset, duplicates and lost packets."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astromined.telemetry import packet_format as fmt
from astromined.telemetry.decode import (
    QUARANTINE_COLUMNS,
    DecodedFile,
    QuarantineReason,
    decode_file,
    drop_duplicates,
    frame_packets,
    lost_packets_by_satellite,
    reflectance_columns,
)
from astromined.telemetry.encode import encode_packets

P = fmt.PACKET_SIZE
WINDOW_START = dt.datetime(2031, 5, 17, tzinfo=dt.UTC).timestamp()
WINDOW_END = WINDOW_START + 86_400.0
TICK = 1.0 / fmt.FINE_TIME_UNITS_PER_SECOND
SOURCE = "sat-007_20310518T001500Z.ccsds"
UNIX_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")

SCALAR_FIELDS = [f for f in fmt.VALUE_RANGES if f != "reflectance"]
EXPECTED_OBSERVATION_COLUMNS = [
    "satellite_id",
    "sequence_count",
    "observed_at",
    "asteroid_id",
    *SCALAR_FIELDS,
    *reflectance_columns(),
    "quality_flags",
    "source_file",
    "file_offset",
]


# --- helpers --------------------------------------------------------------------------------------------


def valid_payload(n: int) -> np.ndarray:
    payload = np.zeros(n, dtype=fmt.PAYLOAD_DTYPE)
    payload["asteroid_id"] = np.arange(100, 100 + n)
    payload["range_km"] = np.linspace(600.0, 40_000.0, n)
    payload["phase_angle_deg"] = 12.5
    payload["apparent_magnitude"] = 16.25
    payload["reflectance"] = np.linspace(0.1, 0.3, fmt.N_BANDS)
    payload["thermal_flux"] = 2.5e4
    payload["radar_albedo"] = np.where(np.arange(n) % 2 == 0, 0.2, np.nan)
    payload["lightcurve_amplitude_mag"] = 0.3
    payload["rotation_period_h"] = 7.5
    payload["sensor_temperature_k"] = 181.0
    payload["quality_flags"] = 0
    return payload


def good_packets(n: int, apid: int = 7, first_sequence: int = 40) -> np.ndarray:
    times = WINDOW_START + 3_600.0 + 60.0 * np.arange(n)
    return encode_packets(np.full(n, apid), first_sequence + np.arange(n), times, valid_payload(n))


def raw_packet(
    apid: int,
    sequence_flags: int = fmt.SEQUENCE_FLAGS_UNSEGMENTED,
    sequence_count: int = 1,
    unix_time: float = WINDOW_START + 10.0,
    payload: np.ndarray | None = None,
) -> bytes:
    """Build one packet by hand, bypassing the encoder's checks, with a correct CRC."""
    packet = np.zeros(1, dtype=fmt.PACKET_DTYPE)
    packet["primary"]["word0"] = (0 << 13) | (0 << 12) | (1 << 11) | (apid & 0x07FF)
    packet["primary"]["word1"] = ((sequence_flags & 0b11) << 14) | (sequence_count & 0x3FFF)
    packet["primary"]["data_length"] = 93
    coarse, fine = fmt.to_ccsds_time(np.array([unix_time]))
    packet["secondary"]["coarse_time"] = coarse
    packet["secondary"]["fine_time"] = fine
    packet["payload"] = valid_payload(1) if payload is None else payload
    body = bytearray(packet.tobytes())
    crc = int(fmt.crc16_ccitt(np.frombuffer(bytes(body[: fmt.CRC_OFFSET]), np.uint8)[None, :])[0])
    body[fmt.CRC_OFFSET :] = crc.to_bytes(2, "big")
    return bytes(body)


def decode(data: bytes, **kwargs: float | None) -> DecodedFile:
    kwargs.setdefault("window_start", WINDOW_START)
    kwargs.setdefault("window_end", WINDOW_END)
    decoded = decode_file(data, SOURCE, **kwargs)
    check_invariants(decoded, data)
    return decoded


def check_invariants(decoded: DecodedFile, data: bytes) -> None:
    """Reconciliation, and every octet of the file in exactly one decoded packet or quarantine row."""
    obs, q = decoded.observations, decoded.quarantine
    assert decoded.packets_in == len(obs) + len(q)
    assert decoded.bytes_in == len(data)
    assert list(q.columns) == QUARANTINE_COLUMNS
    assert list(obs.columns[: len(EXPECTED_OBSERVATION_COLUMNS)]) == EXPECTED_OBSERVATION_COLUMNS
    assert (obs["source_file"] == SOURCE).all()
    assert (q["source_file"] == SOURCE).all()
    spans = [(int(o), P) for o in obs["file_offset"]] + [
        (int(o), int(n)) for o, n in zip(q["offset"], q["length"], strict=True)
    ]
    spans.sort()
    position = 0
    for offset, length in spans:
        assert offset == position, f"gap or overlap at octet {position}"
        assert length > 0
        position = offset + length
    assert position == len(data)
    for offset, length, raw in zip(q["offset"], q["length"], q["raw"], strict=True):
        assert raw == data[offset : offset + length]
    assert q["offset"].is_monotonic_increasing
    assert obs["file_offset"].is_monotonic_increasing


def only_quarantine_row(decoded: DecodedFile) -> pd.Series:
    assert len(decoded.quarantine) == 1, decoded.quarantine[["offset", "length", "reason", "detail"]]
    return decoded.quarantine.iloc[0]


def seconds(timestamps: pd.Series) -> np.ndarray:
    return (timestamps - UNIX_EPOCH).dt.total_seconds().to_numpy()


# --- round trip -----------------------------------------------------------------------------------------


def _in_range(field: str) -> st.SearchStrategy[float]:
    low, high = fmt.VALUE_RANGES[field]
    return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)


packet_specs = st.fixed_dictionaries(
    {
        "apid": st.integers(min_value=fmt.MIN_APID, max_value=fmt.MAX_APID),
        "sequence_count": st.integers(min_value=0, max_value=5 * fmt.SEQUENCE_COUNT_MODULO),
        "time": st.floats(min_value=WINDOW_START, max_value=WINDOW_END, exclude_max=True),
        "asteroid_id": st.integers(min_value=0, max_value=2**32 - 1),
        "reflectance": st.lists(_in_range("reflectance"), min_size=fmt.N_BANDS, max_size=fmt.N_BANDS),
        "radar_albedo": st.one_of(st.just(math.nan), _in_range("radar_albedo")),
        "quality_flags": st.integers(min_value=0, max_value=0xFFFF),
        **{f: _in_range(f) for f in SCALAR_FIELDS if f != "radar_albedo"},
    }
)


@settings(max_examples=50, deadline=None)
@given(st.lists(packet_specs, min_size=1, max_size=12))
def test_encoder_decoder_round_trip(specs: list[dict]) -> None:
    n = len(specs)
    payload = np.zeros(n, dtype=fmt.PAYLOAD_DTYPE)
    for field in fmt.PAYLOAD_DTYPE.names:
        payload[field] = [s[field] for s in specs]
    apid = np.array([s["apid"] for s in specs])
    sequence = np.array([s["sequence_count"] for s in specs])
    times = np.array([s["time"] for s in specs])
    data = encode_packets(apid, sequence, times, payload).tobytes()
    assert len(data) == n * P

    decoded = decode(data, received_at=WINDOW_END + 900.0)
    obs = decoded.observations
    assert decoded.quarantine.empty, decoded.quarantine[["reason", "detail"]]
    assert len(obs) == n == decoded.packets_in
    assert obs["file_offset"].tolist() == [i * P for i in range(n)]
    assert obs["satellite_id"].tolist() == apid.tolist()
    assert obs["sequence_count"].tolist() == (sequence % 16_384).tolist()
    assert obs["asteroid_id"].tolist() == [s["asteroid_id"] for s in specs]
    assert obs["quality_flags"].tolist() == [s["quality_flags"] for s in specs]
    assert np.all(np.abs(seconds(obs["observed_at"]) - times) <= TICK + 1e-6)
    assert (obs["received_at"] == pd.Timestamp(WINDOW_END + 900.0, unit="s", tz="UTC")).all()
    for field in SCALAR_FIELDS:
        expected = np.array([s[field] for s in specs], dtype=np.float32)
        assert obs[field].dtype == np.float32
        np.testing.assert_array_equal(obs[field].to_numpy(), expected, err_msg=field)
    reflectance = np.array([s["reflectance"] for s in specs], dtype=np.float32)
    np.testing.assert_array_equal(obs[reflectance_columns()].to_numpy(), reflectance)


def test_round_trip_without_window_accepts_any_time() -> None:
    packets = encode_packets(3, 0, 0.0, valid_payload(1))
    decoded = decode(packets.tobytes(), window_start=None, window_end=None)
    assert len(decoded.observations) == 1
    assert decoded.observations["observed_at"].iloc[0] == UNIX_EPOCH
    assert "received_at" not in decoded.observations


# --- quarantine: one reason at a time ---------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(
    index=st.integers(min_value=0, max_value=4),
    octet=st.integers(min_value=6, max_value=P - 1),
    bit=st.integers(min_value=0, max_value=7),
)
def test_flipped_bit_after_primary_header_is_a_crc_mismatch(index: int, octet: int, bit: int) -> None:
    data = bytearray(good_packets(5).tobytes())
    data[index * P + octet] ^= 1 << bit
    decoded = decode(bytes(data))
    row = only_quarantine_row(decoded)
    assert row["reason"] == QuarantineReason.CRC_MISMATCH == "crc_mismatch"
    assert row["offset"] == index * P
    assert row["length"] == P
    assert row["satellite_id"] == 7
    assert len(decoded.observations) == 4
    assert index * P not in decoded.observations["file_offset"].tolist()


@pytest.mark.parametrize("octet", range(6))
@pytest.mark.parametrize("bit", range(8))
def test_flipped_bit_in_primary_header(octet: int, bit: int) -> None:
    """Bits that make up the header pattern break framing; the others are caught by the CRC."""
    index = 2
    data = bytearray(good_packets(4).tobytes())
    data[index * P + octet] ^= 1 << bit
    decoded = decode(bytes(data))
    row = only_quarantine_row(decoded)
    pattern_bit = (octet == 0 and bit >= 3) or octet in (4, 5)
    if pattern_bit:
        assert row["reason"] == QuarantineReason.UNFRAMED_BYTES
        assert row["detail"] == f"{P} octets at offset {index * P}"
        assert row["satellite_id"] == -1
    else:
        assert row["reason"] == QuarantineReason.CRC_MISMATCH
    assert (row["offset"], row["length"]) == (index * P, P)
    assert decoded.observations["file_offset"].tolist() == [0, P, 3 * P]


@pytest.mark.parametrize("apid", [0, 501, 1024, 2047])
def test_apid_out_of_range_with_valid_crc(apid: int) -> None:
    data = good_packets(2).tobytes() + raw_packet(apid) + good_packets(1).tobytes()
    decoded = decode(data)
    row = only_quarantine_row(decoded)
    assert row["reason"] == QuarantineReason.APID_OUT_OF_RANGE == "apid_out_of_range"
    assert row["detail"] == "apid"
    assert (row["offset"], row["length"]) == (2 * P, P)
    assert row["satellite_id"] == apid
    assert decoded.observations["file_offset"].tolist() == [0, P, 3 * P]


@pytest.mark.parametrize("apid", [1, 250, 500])
def test_hand_built_packet_matches_encoder(apid: int) -> None:
    encoded = encode_packets(apid, 1, WINDOW_START + 10.0, valid_payload(1)).tobytes()
    assert raw_packet(apid) == encoded


@pytest.mark.parametrize(
    "when",
    [0.0, WINDOW_START - 86_400.0, WINDOW_START - 1.0, WINDOW_START - TICK, WINDOW_END, WINDOW_END + 3_600.0],
)
def test_timestamp_outside_partition(when: float) -> None:
    packet = encode_packets(9, 5, when, valid_payload(1)).tobytes()
    data = good_packets(1).tobytes() + packet
    decoded = decode(data)
    row = only_quarantine_row(decoded)
    assert row["reason"] == QuarantineReason.TIMESTAMP_OUTSIDE_PARTITION == "timestamp_outside_partition"
    assert row["detail"] == "observed_at"
    assert (row["offset"], row["length"], row["satellite_id"]) == (P, P, 9)
    assert len(decoded.observations) == 1


@pytest.mark.parametrize("when", [WINDOW_START, WINDOW_START + TICK, WINDOW_END - TICK, WINDOW_END - 1e-6])
def test_timestamp_on_the_inside_edges_is_accepted(when: float) -> None:
    decoded = decode(encode_packets(9, 5, when, valid_payload(1)).tobytes())
    assert decoded.quarantine.empty
    assert len(decoded.observations) == 1


def _set(payload: np.ndarray, field: str, value: float) -> None:
    if field == "reflectance":
        payload["reflectance"][0, 7] = value
    else:
        payload[field] = value


def _out_of_range_cases() -> list[tuple[str, float]]:
    cases = []
    for field, (low, high) in fmt.VALUE_RANGES.items():
        below = float(np.nextafter(np.float32(low), np.float32(-np.inf)))
        above = float(np.nextafter(np.float32(high), np.float32(np.inf)))
        cases += [(field, below), (field, above), (field, low - abs(low) - 1.0), (field, math.inf)]
        if field != "radar_albedo":
            cases.append((field, math.nan))
    return cases


@pytest.mark.parametrize(("field", "value"), _out_of_range_cases())
def test_value_out_of_range_names_the_field(field: str, value: float) -> None:
    payload = valid_payload(1)
    _set(payload, field, value)
    bad = encode_packets(11, 3, WINDOW_START + 100.0, payload).tobytes()
    data = good_packets(3).tobytes() + bad + good_packets(1).tobytes()
    decoded = decode(data)
    row = only_quarantine_row(decoded)
    assert row["reason"] == QuarantineReason.VALUE_OUT_OF_RANGE == "value_out_of_range"
    assert row["detail"] == field
    assert (row["offset"], row["length"], row["satellite_id"]) == (3 * P, P, 11)
    assert len(decoded.observations) == 4


def test_phase_angle_200_is_out_of_range() -> None:
    payload = valid_payload(1)
    payload["phase_angle_deg"] = 200.0
    decoded = decode(encode_packets(4, 0, WINDOW_START + 1.0, payload).tobytes())
    row = only_quarantine_row(decoded)
    assert (row["reason"], row["detail"], row["offset"]) == ("value_out_of_range", "phase_angle_deg", 0)
    assert decoded.observations.empty


@pytest.mark.parametrize("field", list(fmt.VALUE_RANGES))
@pytest.mark.parametrize("edge", [0, 1])
def test_range_bounds_are_inclusive(field: str, edge: int) -> None:
    # The documented bound itself (as a Python float, e.g. 0.01 h, which float32 cannot hold exactly).
    payload = valid_payload(1)
    _set(payload, field, fmt.VALUE_RANGES[field][edge])
    decoded = decode(encode_packets(4, 0, WINDOW_START + 1.0, payload).tobytes())
    assert decoded.quarantine.empty, decoded.quarantine[["reason", "detail"]]
    assert len(decoded.observations) == 1


def test_radar_albedo_nan_means_not_measured() -> None:
    payload = valid_payload(2)
    payload["radar_albedo"] = np.nan
    decoded = decode(encode_packets(4, np.arange(2), WINDOW_START + 1.0, payload).tobytes())
    assert decoded.quarantine.empty
    assert decoded.observations["radar_albedo"].isna().all()


@pytest.mark.parametrize("flags", [0b00, 0b01, 0b10])
def test_bad_sequence_flags(flags: int) -> None:
    data = good_packets(1).tobytes() + raw_packet(12, sequence_flags=flags) + good_packets(1).tobytes()
    decoded = decode(data)
    row = only_quarantine_row(decoded)
    assert row["reason"] == QuarantineReason.BAD_SEQUENCE_FLAGS == "bad_sequence_flags"
    assert (row["offset"], row["length"], row["satellite_id"]) == (P, P, 12)
    assert len(decoded.observations) == 2


def test_first_failing_check_wins() -> None:
    """Order: CRC, sequence flags, APID, timestamp, values; one row per packet."""
    bad_values = valid_payload(1)
    bad_values["phase_angle_deg"] = 200.0
    outside = WINDOW_END + 10.0
    crc_broken = bytearray(raw_packet(0, 0b01, unix_time=outside, payload=bad_values))
    crc_broken[50] ^= 0x10
    data = (
        bytes(crc_broken)
        + raw_packet(0, 0b01, unix_time=outside, payload=bad_values)
        + raw_packet(0, unix_time=outside, payload=bad_values)
        + raw_packet(5, unix_time=outside, payload=bad_values)
        + raw_packet(5, payload=bad_values)
    )
    decoded = decode(data)
    assert decoded.quarantine["reason"].tolist() == [
        "crc_mismatch",
        "bad_sequence_flags",
        "apid_out_of_range",
        "timestamp_outside_partition",
        "value_out_of_range",
    ]
    assert decoded.quarantine["offset"].tolist() == [0, P, 2 * P, 3 * P, 4 * P]
    assert decoded.observations.empty


# --- framing: truncation, garbage, foreign files --------------------------------------------------------


@pytest.mark.parametrize("kept", [6, 12, 50, P - 1])
def test_truncated_final_packet(kept: int) -> None:
    full = good_packets(4).tobytes()
    data = full[: 3 * P + kept]
    decoded = decode(data)
    row = only_quarantine_row(decoded)
    assert row["reason"] == QuarantineReason.TRUNCATED_PACKET == "truncated_packet"
    assert (row["offset"], row["length"]) == (3 * P, kept)
    assert row["detail"] == f"{kept} octets at offset {3 * P}"
    assert row["satellite_id"] == -1
    assert row["raw"] == full[3 * P : 3 * P + kept]
    assert decoded.observations["file_offset"].tolist() == [0, P, 2 * P]


@pytest.mark.parametrize("kept", [1, 5])
def test_tail_too_short_for_a_primary_header_is_unframed(kept: int) -> None:
    data = good_packets(2).tobytes() + good_packets(1).tobytes()[:kept]
    row = only_quarantine_row(decode(data))
    assert (row["reason"], row["offset"], row["length"]) == ("unframed_bytes", 2 * P, kept)


def test_single_truncated_packet_file() -> None:
    data = good_packets(1).tobytes()[:40]
    decoded = decode(data)
    row = only_quarantine_row(decoded)
    assert (row["reason"], row["offset"], row["length"]) == ("truncated_packet", 0, 40)
    assert decoded.packets_in == 1


def test_garbage_between_packets_exact_offset_and_length() -> None:
    packets = good_packets(6).tobytes()
    garbage = bytes(range(0x41, 0x41 + 37))
    data = packets[: 3 * P] + garbage + packets[3 * P :]
    decoded = decode(data)
    row = only_quarantine_row(decoded)
    assert row["reason"] == QuarantineReason.UNFRAMED_BYTES == "unframed_bytes"
    assert (row["offset"], row["length"]) == (300, 37)
    assert row["detail"] == "37 octets at offset 300"
    assert row["raw"] == garbage
    assert row["satellite_id"] == -1
    assert decoded.observations["file_offset"].tolist() == [0, 100, 200, 337, 437, 537]
    assert decoded.observations["sequence_count"].tolist() == list(range(40, 46))


# Garbage octets that cannot start a primary header (first octet 0b00001xxx), so framing resumes exactly
# at the next packet (a header-looking pattern at the very start of a disturbance is trusted by design).
garbage_octets = st.integers(min_value=0, max_value=255).filter(lambda b: b & 0xF8 != 0x08)


@settings(max_examples=50, deadline=None)
@given(
    where=st.integers(min_value=0, max_value=5),
    garbage=st.lists(garbage_octets, min_size=1, max_size=2 * P + 17).map(bytes),
)
def test_random_garbage_is_quarantined_and_following_packets_decode(where: int, garbage: bytes) -> None:
    packets = good_packets(5).tobytes()
    data = packets[: where * P] + garbage + packets[where * P :]
    decoded = decode(data)
    row = only_quarantine_row(decoded)
    assert row["reason"] == "unframed_bytes"
    assert (row["offset"], row["length"]) == (where * P, len(garbage))
    assert row["raw"] == garbage
    expected = [i * P + (len(garbage) if i >= where else 0) for i in range(5)]
    assert decoded.observations["file_offset"].tolist() == expected
    assert decoded.observations["sequence_count"].tolist() == list(range(40, 45))


def test_header_lookalike_inside_garbage_does_not_misalign_framing() -> None:
    packets = good_packets(4).tobytes()
    # Garbage carrying a copy of a real primary header (but no valid CRC behind it).
    garbage = b"\xff\xff" + packets[P : P + 6] + b"\x00" * 30
    data = packets[: 2 * P] + garbage + packets[2 * P :]
    decoded = decode(data)
    assert len(decoded.observations) == 4
    assert decoded.observations["file_offset"].tolist() == [0, P, 2 * P + len(garbage), 3 * P + len(garbage)]
    assert decoded.quarantine["reason"].tolist() == ["unframed_bytes"]
    assert decoded.quarantine["length"].sum() == len(garbage)


def test_packet_truncated_mid_file_is_quarantined_and_framing_recovers() -> None:
    packets = good_packets(6).tobytes()
    data = packets[: 2 * P + 60] + packets[3 * P :]  # packet 2 loses its last 40 octets
    decoded = decode(data)
    decoded_sequences = set(decoded.observations["sequence_count"])
    assert 42 not in decoded_sequences
    # Framing recovers: every packet from the one after the damaged neighbour onwards is decoded.
    assert {40, 41, 44, 45} <= decoded_sequences
    assert set(decoded.quarantine["reason"]) <= {"crc_mismatch", "unframed_bytes", "truncated_packet"}
    assert decoded.quarantine["offset"].min() == 2 * P


PNG_LIKE = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"this is not telemetry\n" * 20
FOREIGN_FILES = {
    "png": PNG_LIKE,
    "text": b"timestamp,value\n2031-05-17T00:00:00Z,1.0\n" * 30,
    "json": b'{"satellite": 7, "packets": []}\n',
    "zeros": bytes(1_000),
    "ones": b"\xff" * 999,
    "random": np.random.default_rng(20310517).integers(0, 256, 3_000, dtype=np.uint8).tobytes(),
}


@pytest.mark.parametrize("name", list(FOREIGN_FILES))
def test_file_of_another_format_is_quarantined_without_exception(name: str) -> None:
    data = FOREIGN_FILES[name]
    decoded = decode(data)
    assert decoded.observations.empty
    assert decoded.quarantine["length"].sum() == len(data)
    assert decoded.packets_in == len(decoded.quarantine) >= 1


def test_png_is_one_unframed_run() -> None:
    row = only_quarantine_row(decode(PNG_LIKE))
    assert (row["reason"], row["offset"], row["length"]) == ("unframed_bytes", 0, len(PNG_LIKE))


def test_empty_file() -> None:
    decoded = decode(b"")
    assert decoded.packets_in == 0
    assert decoded.bytes_in == 0
    assert decoded.observations.empty
    assert decoded.quarantine.empty
    assert list(decoded.observations.columns) == EXPECTED_OBSERVATION_COLUMNS


def test_frame_packets_directly() -> None:
    packets = good_packets(3).tobytes()
    data = packets[:P] + b"\x00" * 7 + packets[P:] + packets[:30]
    offsets, gaps = frame_packets(np.frombuffer(data, dtype=np.uint8))
    assert offsets.tolist() == [0, P + 7, 2 * P + 7]
    assert gaps == [
        (P, 7, QuarantineReason.UNFRAMED_BYTES),
        (3 * P + 7, 30, QuarantineReason.TRUNCATED_PACKET),
    ]


def test_quarantine_reasons_are_stable() -> None:
    assert {r.value for r in QuarantineReason} == {
        "unframed_bytes",
        "truncated_packet",
        "crc_mismatch",
        "bad_sequence_flags",
        "apid_out_of_range",
        "timestamp_outside_partition",
        "value_out_of_range",
    }


# --- duplicates -----------------------------------------------------------------------------------------


def test_retransmitted_packets_are_dropped_keeping_the_first() -> None:
    packets = good_packets(5).tobytes()
    data = packets + packets[P : 3 * P] + packets[4 * P :]
    decoded = decode(data)
    assert len(decoded.observations) == 8  # the decoder keeps both copies
    unique, duplicates = drop_duplicates(decoded.observations)
    assert duplicates == 3
    assert len(unique) == 5
    assert unique["file_offset"].tolist() == [0, P, 2 * P, 3 * P, 4 * P]
    assert len(unique) + duplicates == len(decoded.observations)


def test_same_sequence_count_at_another_time_is_not_a_duplicate() -> None:
    # After the 14-bit wrap a count repeats; the observation time tells the packets apart.
    first = encode_packets(7, 5, WINDOW_START + 1.0, valid_payload(1)).tobytes()
    later = encode_packets(7, 5 + 16_384, WINDOW_START + 2.0, valid_payload(1)).tobytes()
    other_sat = encode_packets(8, 5, WINDOW_START + 1.0, valid_payload(1)).tobytes()
    unique, duplicates = drop_duplicates(decode(first + later + other_sat).observations)
    assert duplicates == 0
    assert len(unique) == 3


# --- lost packets -----------------------------------------------------------------------------------------


def _frame(rows: list[tuple[int, int, float]]) -> pd.DataFrame:
    satellite, sequence, seconds_ = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "satellite_id": np.array(satellite, dtype=np.int32),
            "sequence_count": np.array(sequence, dtype=np.int32),
            "observed_at": pd.to_datetime(np.array(seconds_) + WINDOW_START, unit="s", utc=True),
        }
    )


def test_lost_packets_by_satellite_counts_gaps_including_across_the_wrap() -> None:
    rows = [
        # satellite 1: 0,1,2,_,_,5,6 → 2 lost
        (1, 0, 0),
        (1, 1, 1),
        (1, 2, 2),
        (1, 5, 5),
        (1, 6, 6),
        # satellite 2: 16382, 16383, 0, _, _, 3 → 2 lost, the wrap itself costs nothing
        (2, 16_382, 0),
        (2, 16_383, 1),
        (2, 0, 2),
        (2, 3, 5),
        # satellite 3: 16380, _, _, _, _, _, 2 → 5 lost across the wrap
        (3, 16_380, 0),
        (3, 2, 7),
        # satellite 4: one packet → nothing to compare
        (4, 100, 0),
        # satellite 5: a retransmission (same count twice) is not a loss
        (5, 10, 0),
        (5, 10, 0),
        (5, 11, 1),
    ]
    frame = _frame(rows).sample(frac=1.0, random_state=3)  # order must come from the data, not the input
    lost = lost_packets_by_satellite(frame)
    assert lost.to_dict() == {1: 2, 2: 2, 3: 5, 4: 0, 5: 0}
    assert lost.dtype.kind == "i"


def test_lost_packets_orders_by_observation_time_not_sequence() -> None:
    # Counts 16383 then 0 in time order are consecutive; sorting by count would see a huge gap.
    lost = lost_packets_by_satellite(_frame([(9, 0, 10), (9, 16_383, 9), (9, 1, 11)]))
    assert lost.to_dict() == {9: 0}


def test_lost_packets_of_nothing_is_empty() -> None:
    lost = lost_packets_by_satellite(_frame([(1, 0, 0)]).iloc[:0])
    assert lost.empty


def test_lost_packets_from_decoded_file() -> None:
    packets = good_packets(10, first_sequence=16_380).tobytes()
    data = b"".join(packets[i * P : (i + 1) * P] for i in range(10) if i not in (2, 4, 5))
    decoded = decode(data)
    assert decoded.observations["sequence_count"].tolist() == [16_380, 16_381, 16_383, 2, 3, 4, 5]
    assert lost_packets_by_satellite(decoded.observations).to_dict() == {7: 3}
