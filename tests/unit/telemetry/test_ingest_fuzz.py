"""A time-boxed fuzz of the whole ingest (framing, checks, de-duplication, quarantine) over hostile days.

Landing dirs of arbitrary octets, empty and near-empty files, misnamed files and valid downlinks mutated
by bit flips, truncation, deletions, splices and duplicated packets. Whatever comes in:

- the ingest does not raise;
- no octet is lost: per file, the accepted rows and the quarantine rows never overlap, and what they do
  not cover is whole packets that repeat an accepted one (the dropped duplicates, as many as counted);
- no packet is accepted that the numpy reference checks (``validate_packets``: CRC first) reject, and no
  packet is quarantined for its CRC when the CRC verifies;
- the counts reconcile, and each file leaves a trace (a row, a quarantine row, or only duplicates).

The other property tests compare each compiled kernel with its numpy reference (test_kernels.py) or pin
one fault at a time (test_decode.py); this one runs the day end to end. Bounded by example count
(``max_examples``, a few seconds on one core), not by time.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astromined.telemetry import packet_format as fmt
from astromined.telemetry.decode import QuarantineReason
from astromined.telemetry.downlink_files import downlink_file_name, parse_downlink_file_name
from astromined.telemetry.encode import encode_packets
from astromined.telemetry.ingest import EMPTY_FILE, UNRECOGNIZED_FILE, DayIngest, day_window, ingest_day
from astromined.telemetry.reference_decode import validate_packets

P = fmt.PACKET_SIZE
DAY = dt.date(2031, 5, 17)
WINDOW_START, WINDOW_END = day_window(DAY)
RECEIVED = dt.datetime(2031, 5, 18, 0, 20, tzinfo=dt.UTC)
NAMED_SATELLITES = (1, 2, 3)
APIDS = (1, 2, 3, 4)  # 4 only ever arrives relayed in another satellite's file
HEADER = bytes([0x08, 0x02, 0xC0, 0x07, 0x00, 0x5D])  # a plausible primary header of satellite 2
PACKET_REASONS = {r.value for r in QuarantineReason} - {"unframed_bytes", "truncated_packet"}
FILE_REASONS = {UNRECOGNIZED_FILE, EMPTY_FILE}
UNIX_EPOCH = pd.Timestamp(0, tz="UTC")


def _payload(n: int) -> np.ndarray:
    payload = np.zeros(n, dtype=fmt.PAYLOAD_DTYPE)
    payload["asteroid_id"] = np.arange(1_000, 1_000 + n)
    payload["range_km"] = 2_000.0
    payload["phase_angle_deg"] = 20.0
    payload["apparent_magnitude"] = 15.0
    payload["reflectance"] = 0.25
    payload["thermal_flux"] = 3e4
    payload["radar_albedo"] = np.nan
    payload["lightcurve_amplitude_mag"] = 0.4
    payload["rotation_period_h"] = 5.0
    payload["sensor_temperature_k"] = 190.0
    return payload


@st.composite
def downlink_packets(draw, satellite: int) -> bytes:
    """A satellite's packets: mostly its own APID, some relayed ones, some outside the day or its ranges."""
    n = draw(st.integers(1, 8))
    apid = np.array(draw(st.lists(st.sampled_from([satellite] * 3 + list(APIDS)), min_size=n, max_size=n)))
    first_sequence = draw(st.integers(0, fmt.SEQUENCE_COUNT_MODULO - 1))
    sequence = (first_sequence + np.arange(n)) % fmt.SEQUENCE_COUNT_MODULO
    first = draw(
        st.one_of(
            st.floats(WINDOW_START, WINDOW_END - 100.0),
            st.floats(WINDOW_START - 100.0, WINDOW_END + 100.0),  # sometimes across a day boundary
        )
    )
    times = first + draw(st.sampled_from([0.0, 0.5, 1.0, 7.0])) * np.arange(n)
    payload = _payload(n)
    for row in draw(st.lists(st.integers(0, n - 1), max_size=2)):
        payload["phase_angle_deg"][row] = draw(st.sampled_from([200.0, -1.0, float("nan")]))
    return encode_packets(apid, sequence, times, payload).tobytes()


def _splice(data: bytes, at: int, insert: bytes = b"", remove: int = 0) -> bytes:
    return data[:at] + insert + data[at + remove :]


@st.composite
def mutated(draw, data: bytes, pool: list[bytes]) -> bytes:
    """Duplicated packets (whole, at packet boundaries), then damage anywhere: flips, cuts, deletions,
    insertions of garbage, header look-alikes or pieces of other files, overwrites."""
    for _ in range(draw(st.integers(0, 2))):  # retransmissions: a packet of this or an earlier file
        source = draw(st.sampled_from([data, *pool]))
        if len(source) >= P:
            start = P * draw(st.integers(0, len(source) // P - 1))
            at = P * draw(st.integers(0, len(data) // P))
            data = _splice(data, at, source[start : start + P])
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["flip", "flip", "cut", "delete", "insert", "splice", "overwrite"]))
        at = draw(st.integers(0, len(data)))
        if kind == "flip" and at < len(data):
            data = _splice(data, at, bytes([data[at] ^ (1 << draw(st.integers(0, 7)))]), 1)
        elif kind == "cut":
            data = data[:at]
        elif kind == "delete":
            data = _splice(data, at, remove=draw(st.integers(1, 2 * P)))
        elif kind == "insert":
            data = _splice(data, at, draw(st.one_of(st.binary(min_size=1, max_size=150), st.just(HEADER))))
        elif kind == "splice":
            source = draw(st.sampled_from([data, *pool]))
            start = draw(st.integers(0, len(source)))
            data = _splice(data, at, source[start : start + draw(st.integers(1, 3 * P))])
        elif kind == "overwrite":
            patch = draw(st.binary(min_size=1, max_size=40))
            data = _splice(data, at, patch, len(patch))
    return data


FILE_KINDS = ["downlink", "downlink", "downlink", "copy", "octets", "empty", "zeros", "header"]
BAD_NAMES = ["notes.txt", "sat-1_20310518T002000Z.ccsds", "SAT-001_20310518T002000Z.ccsds", "sat-001.bin"]


@st.composite
def landing_days(draw) -> dict[str, bytes]:
    """One day's files by name (names are unique, as in a landing zone)."""
    files: dict[str, bytes] = {}
    for index in range(draw(st.integers(1, 6))):
        satellite = draw(st.sampled_from(NAMED_SATELLITES))
        name = downlink_file_name(satellite, RECEIVED + dt.timedelta(minutes=index))
        if draw(st.integers(0, 7)) == 0:
            name = f"{index}-{draw(st.sampled_from(BAD_NAMES))}"
        kind = draw(st.sampled_from(FILE_KINDS))
        pool = list(files.values())
        if kind == "downlink":
            data = draw(mutated(draw(downlink_packets(satellite)), pool))
        elif kind == "copy" and pool:  # a whole earlier file again (a retransmitted pass)
            data = draw(st.sampled_from(pool))
        elif kind == "octets":
            data = draw(st.binary(max_size=3 * P))
        elif kind == "zeros":
            data = bytes(draw(st.integers(1, 3 * P)))
        elif kind == "header":  # part of a header, or a header and a little more
            data = (HEADER + bytes(P))[: draw(st.integers(1, P - 1))]
        else:  # "empty", or a "copy" with no earlier file
            data = b""
        files[name] = data
    return files


def _observed_us(seconds: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(seconds) * 1e6).astype(np.int64)


def _packet(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=fmt.PACKET_DTYPE)


def _crc_verifies(packet_octets: bytes) -> bool:
    computed = int(fmt.crc16_ccitt(np.frombuffer(packet_octets[: fmt.CRC_OFFSET], np.uint8)[None, :])[0])
    return computed == int.from_bytes(packet_octets[fmt.CRC_OFFSET : P], "big")


def _key(packet_octets: bytes) -> tuple[int, int, int]:
    """(APID, sequence count, observation time in µs): what makes two packets duplicates."""
    packet = _packet(packet_octets)
    seconds = fmt.from_ccsds_time(packet["secondary"]["coarse_time"], packet["secondary"]["fine_time"])
    return (
        int(packet["primary"]["word0"][0] & 0x07FF),
        int(packet["primary"]["word1"][0] & 0x3FFF),
        int(_observed_us(seconds)[0]),
    )


def _accepted_by_reference(packet_octets: bytes) -> bool:
    return int(validate_packets(_packet(packet_octets), WINDOW_START, WINDOW_END)[0]) == 0


def _named_satellite(name: str) -> int | None:
    try:
        return parse_downlink_file_name(name)[0]
    except ValueError:
        return None


def check_day(files: dict[str, bytes], result: DayIngest) -> None:
    obs, q = result.observations, result.quarantine
    assert result.files == len(files)
    assert result.bytes_in == sum(len(d) for d in files.values())
    assert result.reconciles
    assert len(obs) == result.packets_ok
    assert len(q) == result.packets_quarantined == sum(result.quarantine_by_reason().values())
    assert result.bytes_in == P * (result.packets_ok + result.duplicates) + int(q["length"].sum())
    assert set(q["reason"]) <= PACKET_REASONS | FILE_REASONS | {"unframed_bytes", "truncated_packet"}

    # Accepted rows: their octets pass every check of the numpy reference, CRC first, and say what the
    # row says.
    observed_us = ((obs["observed_at"] - UNIX_EPOCH) // pd.Timedelta(1, "us")).to_numpy()
    accepted: set[tuple[int, int, int]] = set()
    own: list[tuple[int, int, int]] = []
    relayed: list[tuple[int, int, int]] = []
    spans: dict[str, list[tuple[int, int]]] = {name: [] for name in files}
    for row, us in zip(obs.itertuples(), observed_us, strict=True):
        octets = files[row.source_file][row.file_offset : row.file_offset + P]
        assert len(octets) == P
        assert _crc_verifies(octets), (row.source_file, row.file_offset)
        assert _accepted_by_reference(octets), (row.source_file, row.file_offset)
        key = _key(octets)
        assert key == (row.satellite_id, row.sequence_count, us)
        assert row.asteroid_id == int(_packet(octets)["payload"]["asteroid_id"][0])
        accepted.add(key)
        (own if key[0] == _named_satellite(row.source_file) else relayed).append(key)
        spans[row.source_file].append((row.file_offset, P))
    # De-duplication as documented: a satellite's own packets among themselves, relayed ones among
    # themselves (a relayed copy of a packet its satellite also sent is kept: docs/telemetry-format.md).
    assert len(own) == len(set(own)) and len(relayed) == len(set(relayed))

    # Quarantine rows: the octets they name, for the reason they give.
    for row in q.itertuples():
        data = files[row.source_file]
        if row.reason == UNRECOGNIZED_FILE:
            assert _named_satellite(row.source_file) is None
            assert (row.offset, row.length, row.raw) == (0, len(data), data[:P])
            spans[row.source_file].append((0, len(data)))
            continue
        assert _named_satellite(row.source_file) is not None
        assert row.raw == data[row.offset : row.offset + row.length] and len(row.raw) == row.length
        if row.reason == EMPTY_FILE:
            assert data == b"" and row.satellite_id == _named_satellite(row.source_file)
            continue
        assert row.length > 0
        if row.reason in PACKET_REASONS:
            assert row.length == P
            assert _crc_verifies(row.raw) == (row.reason != "crc_mismatch")
            assert not _accepted_by_reference(row.raw)
        spans[row.source_file].append((row.offset, row.length))

    # Every octet: rows never overlap; what they leave is whole packets repeating an accepted packet.
    dropped = 0
    for name, data in files.items():
        traced = bool(spans[name]) or name in set(q["source_file"])
        position = 0
        uncovered = []
        for offset, length in sorted(spans[name]):
            assert offset >= position, f"{name}: rows overlap at octet {offset}"
            uncovered.append((position, offset))
            position = offset + length
        assert position <= len(data)
        uncovered.append((position, len(data)))
        for start, end in uncovered:
            assert (end - start) % P == 0, f"{name}: octets {start}..{end} in no row"
            for offset in range(start, end, P):
                octets = data[offset : offset + P]
                assert _accepted_by_reference(octets) and _key(octets) in accepted, (name, offset)
                dropped += 1
        assert traced or len(data) > 0, f"{name}: an empty file without a trace"
    assert dropped == result.duplicates


@pytest.mark.fault("bad-input", "fuzz: mutated downlinks, empty/partial/misnamed files, arbitrary octets")
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(landing_days())
def test_ingest_accounts_for_every_octet_of_a_hostile_day(files: dict[str, bytes]) -> None:
    result = ingest_day(DAY, [(name, lambda data=data: data) for name, data in files.items()])
    check_day(files, result)


@pytest.mark.fault("bad-input", "fuzz: arbitrary octets under an arbitrary file name")
@settings(max_examples=100, deadline=None)
@given(
    name=st.one_of(st.just(downlink_file_name(2, RECEIVED)), st.text(min_size=1, max_size=40)),
    data=st.binary(max_size=4 * P),
)
def test_ingest_of_arbitrary_octets_never_raises_and_loses_nothing(name: str, data: bytes) -> None:
    check_day({name: data}, ingest_day(DAY, [(name, lambda: data)]))


def test_the_fuzz_reaches_every_outcome() -> None:
    """The checks above are not vacuous: one crafted day has accepted, relayed, duplicated, empty,
    unrecognized, truncated, unframed, CRC-failing, out-of-window and out-of-range packets."""
    own = encode_packets(np.array([1, 1, 4]), np.arange(3), WINDOW_START + np.arange(3.0), _payload(3))
    late = encode_packets(1, 9, WINDOW_END + 5.0, _payload(1)).tobytes()
    bad_value = _payload(1)
    bad_value["phase_angle_deg"] = 200.0
    out_of_range = encode_packets(1, 10, WINDOW_START + 9.0, bad_value).tobytes()
    flipped = bytearray(own.tobytes()[:P])
    flipped[40] ^= 0x04
    files = {
        downlink_file_name(1, RECEIVED): own.tobytes() + own.tobytes()[:P] + late + out_of_range + HEADER,
        downlink_file_name(1, RECEIVED + dt.timedelta(minutes=1)): b"\xff" * 7 + bytes(flipped),
        downlink_file_name(2, RECEIVED): b"",
        downlink_file_name(3, RECEIVED): own.tobytes()[2 * P :],  # only a copy of the relayed packet
        "readme.txt": b"hello",
    }
    result = ingest_day(DAY, [(name, lambda data=data: data) for name, data in files.items()])
    check_day(files, result)
    assert result.packets_ok == 3 and result.duplicates == 2
    assert result.quarantine_by_reason() == {
        "crc_mismatch": 1,
        "empty_file": 1,
        "timestamp_outside_partition": 1,
        "truncated_packet": 1,
        "unframed_bytes": 1,
        "unrecognized_file": 1,
        "value_out_of_range": 1,
    }
