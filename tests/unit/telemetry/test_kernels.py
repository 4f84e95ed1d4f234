"""The compiled ingest kernels against their numpy references, on valid, out-of-range and corrupt input.

References: ``packet_format.crc16_ccitt`` (for ``crc.py``), ``reference_decode.validate_packets``,
``reference_decode.observation_columns_reference``, ``reference_decode.frame_packets_reference``,
``decode.duplicate_mask`` and ``decode.lost_packet_counts``.
"""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astromined.telemetry import crc, kernels
from astromined.telemetry import packet_format as fmt
from astromined.telemetry.decode import PacketBatch, duplicate_mask, lost_packet_counts, reflectance_columns
from astromined.telemetry.encode import encode_packets
from astromined.telemetry.ingest import LATENCY_BIN_S, LATENCY_BINS, MemorySink, stream_day
from astromined.telemetry.reference_decode import (
    frame_packets_reference,
    observation_columns_reference,
    validate_packets,
)
from astromined.telemetry.row_buffer import SCALAR_FLOAT_FIELDS, RowBuffer

P = fmt.PACKET_SIZE
WINDOW_START = dt.datetime(2031, 5, 17, tzinfo=dt.UTC).timestamp()
WINDOW_END = WINDOW_START + 86_400.0
FLOAT_COLUMNS = [*SCALAR_FLOAT_FIELDS, *reflectance_columns()]

# Payload values: mostly inside the documented ranges, sometimes at or past a bound, NaN or infinite.
wire_floats = st.one_of(
    st.floats(min_value=-1.0, max_value=3.0, width=32),
    st.floats(width=32),
    st.sampled_from([0.0, 0.01, 1.0, 1.5, 2.0, 3.0, 180.0, 400.0, 1e7, 1e12, float("nan"), float("inf")]),
)


@st.composite
def packet_arrays(draw, max_packets: int = 12) -> np.ndarray:
    """Packets as the decoder sees them: encoded ones with arbitrary field values, some with their
    headers rewritten (bad sequence flags, APIDs outside 1..500) and re-CRC'd, some with random octets
    overwritten after the CRC was computed."""
    n = draw(st.integers(min_value=1, max_value=max_packets))
    payload = np.zeros(n, dtype=fmt.PAYLOAD_DTYPE)
    for field in fmt.PAYLOAD_DTYPE.names:
        shape = fmt.PAYLOAD_DTYPE.fields[field][0].shape
        count = n * (int(np.prod(shape)) if shape else 1)
        if field in ("asteroid_id", "quality_flags"):
            bits = 32 if field == "asteroid_id" else 16
            values = draw(st.lists(st.integers(0, 2**bits - 1), min_size=count, max_size=count))
        else:
            values = draw(st.lists(wire_floats, min_size=count, max_size=count))
        payload[field] = np.asarray(values).reshape((n, *shape))
    times = draw(
        st.lists(
            st.floats(min_value=WINDOW_START - 7_200, max_value=WINDOW_END + 7_200), min_size=n, max_size=n
        )
    )
    apid = draw(st.lists(st.integers(fmt.MIN_APID, fmt.MAX_APID), min_size=n, max_size=n))
    sequence = draw(st.lists(st.integers(0, fmt.SEQUENCE_COUNT_MODULO - 1), min_size=n, max_size=n))
    packets = encode_packets(np.array(apid), np.array(sequence), np.array(times), payload)
    rows = packets.view(np.uint8).reshape(n, P)
    for i in range(n):
        kind = draw(st.sampled_from(["keep", "keep", "header", "octets"]))
        if kind == "header":  # a header field the encoder refuses, with a valid CRC
            word0 = (1 << 11) | draw(st.sampled_from([0, 501, 2047]))
            word1 = (draw(st.integers(0, 3)) << 14) | sequence[i]
            rows[i, 0:4] = np.array([word0, word1], dtype=">u2").view(np.uint8)
            rows[i, fmt.CRC_OFFSET :] = np.array(
                fmt.crc16_ccitt(rows[i : i + 1, : fmt.CRC_OFFSET]), ">u2"
            ).view(np.uint8)
        elif kind == "octets":  # damage after the CRC was computed
            for position in draw(st.lists(st.integers(0, P - 1), min_size=1, max_size=4)):
                rows[i, position] = draw(st.integers(0, 255))
    return packets


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=P, max_size=P), min_size=1, max_size=10))
def test_crc_kernel_matches_numpy_reference_on_arbitrary_octets(rows: list[bytes]) -> None:
    matrix = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(-1, P)
    expected = fmt.crc16_ccitt(matrix[:, : fmt.CRC_OFFSET])
    assert np.array_equal(crc.crc16_packets(matrix), expected)  # what the packet checks use
    assert np.array_equal(crc.crc16_packets(matrix, clmul=False), expected)  # table slicing
    if crc.CLMUL_AVAILABLE:
        assert np.array_equal(crc.crc16_packets(matrix, clmul=True), expected)


def test_crc_by_carry_less_multiplication_on_single_bit_messages() -> None:
    """Every one of the 784 message bits (and no bit) through each chunk's folding constant."""
    if not crc.CLMUL_AVAILABLE:
        pytest.skip("no PCLMULQDQ on this CPU")
    matrix = np.zeros((8 * fmt.CRC_OFFSET + 1, P), dtype=np.uint8)
    for bit in range(8 * fmt.CRC_OFFSET):
        matrix[bit + 1, bit // 8] = 0x80 >> (bit % 8)
    expected = fmt.crc16_ccitt(matrix[:, : fmt.CRC_OFFSET])
    assert np.array_equal(crc.crc16_packets(matrix, clmul=True), expected)


def test_row_buffer_arrays_are_disjoint_and_start_in_distinct_cache_sets() -> None:
    buffer = RowBuffer(5_000)
    arrays = [*buffer.floats, *buffer.arrays()[:4], *buffer.arrays()[5:], *buffer.scratch]
    spans = sorted((a.ctypes.data, a.ctypes.data + a.nbytes) for a in arrays)
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans))
    assert all(len(a) == 5_000 and a.flags.c_contiguous for a in arrays)
    assert len({a.ctypes.data % 4096 // 64 for a in arrays}) == len(arrays)  # L1 sets
    assert len({a.ctypes.data % 65536 // 64 for a in arrays}) == len(arrays)  # L2 sets
    assert buffer.columns()["floats"].shape == (len(FLOAT_COLUMNS), 0)


def test_crc_slicing_tables_extend_the_octet_table() -> None:
    tables = crc.crc16_slicing_tables(16)
    assert np.array_equal(tables[0], fmt.CRC16_TABLE)
    # Row k is an octet followed by k zero octets: one more zero octet is one more table step.
    for k in range(1, 16):
        previous = tables[k - 1].astype(np.uint32)
        assert np.array_equal(tables[k], ((previous << 8) & 0xFFFF) ^ fmt.CRC16_TABLE[previous >> 8])


@settings(max_examples=80, deadline=None)
@given(packet_arrays(), st.booleans())
def test_validate_kernel_matches_numpy_reference(packets: np.ndarray, with_window: bool) -> None:
    window = (WINDOW_START, WINDOW_END) if with_window else (None, None)
    code, apid, sequence, times = kernels.validate(packets, *window)
    assert np.array_equal(code, validate_packets(packets, *window))
    assert np.array_equal(apid, packets["primary"]["word0"] & 0x07FF)
    assert np.array_equal(sequence, packets["primary"]["word1"] & 0x3FFF)
    expected_times = fmt.from_ccsds_time(
        packets["secondary"]["coarse_time"], packets["secondary"]["fine_time"]
    )
    assert np.array_equal(times, expected_times)


def test_validate_kernel_reports_every_check_code() -> None:
    """The hypothesis strategy above does reach every code; this pins one packet per code."""
    good = encode_packets(
        np.array([7]), np.array([3]), np.array([WINDOW_START + 10.0]), _valid_payload(1)
    ).copy()
    cases = [good.copy() for _ in range(4 + len(fmt.VALUE_RANGES))]
    cases[0]["crc"] ^= 1
    cases[1]["primary"]["word1"] &= 0x3FFF
    cases[2]["primary"]["word0"] = (1 << 11) | 600
    cases[3]["secondary"]["coarse_time"] += 2 * 86_400
    for k, field in enumerate(fmt.VALUE_RANGES):
        cases[4 + k]["payload"][field] = -100.0
    wire = b"".join(case.tobytes() for case in [good, *cases[1:], cases[0]])
    packets = np.frombuffer(wire, dtype=fmt.PACKET_DTYPE).copy()
    rows = packets.view(np.uint8).reshape(-1, P)
    recrc = np.ones(len(packets), dtype=bool)
    recrc[-1] = False  # keep the corrupted CRC of the CRC case
    rows[recrc, fmt.CRC_OFFSET :] = np.asarray(fmt.crc16_ccitt(rows[recrc, : fmt.CRC_OFFSET]), ">u2")[
        :, None
    ].view(np.uint8)
    code, *_ = kernels.validate(packets, WINDOW_START, WINDOW_END)
    expected = [0, *range(2, 4 + len(fmt.VALUE_RANGES) + 1), 1]
    assert code.tolist() == expected
    assert np.array_equal(code, validate_packets(packets, WINDOW_START, WINDOW_END))


@settings(max_examples=60, deadline=None)
@given(packet_arrays())
def test_extract_kernel_matches_numpy_reference(packets: np.ndarray) -> None:
    batch = _batch(packets)
    rows = np.flatnonzero(np.arange(len(packets)) % 3 != 1)  # any subset, in order
    mask = np.zeros(len(packets), dtype=bool)
    mask[rows] = True
    reference = observation_columns_reference(batch, mask)
    asteroid_id, floats, quality_flags = kernels.extract(packets, rows)
    assert np.array_equal(asteroid_id, reference["asteroid_id"])
    assert np.array_equal(quality_flags, reference["quality_flags"])
    for row, name in enumerate(FLOAT_COLUMNS):
        assert floats[row].tobytes() == reference[name].tobytes(), name  # NaN payloads bit for bit


# --- framing --------------------------------------------------------------------------------------------


@st.composite
def damaged_files(draw) -> bytes:
    """Runs of valid packets with garbage, header look-alikes, cut packets and flipped bits between."""
    parts = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["packets", "packets", "garbage", "lookalike", "cut"]))
        if kind in ("packets", "cut"):
            n = draw(st.integers(1, 5))
            data = encode_packets(
                np.full(n, 9), np.arange(n), WINDOW_START + np.arange(n, dtype=float), _valid_payload(n)
            ).tobytes()
            if kind == "cut":
                data = data[: draw(st.integers(1, len(data) - 1))]
            parts.append(data)
        elif kind == "garbage":
            parts.append(draw(st.binary(min_size=1, max_size=250)))
        else:  # octets that look like a primary header of our length, then rubbish
            parts.append(bytes([0x08, 0x09, 0xC0, 0x00, 0x00, 0x5D]) + draw(st.binary(max_size=120)))
    data = bytearray(b"".join(parts))
    for position in draw(st.lists(st.integers(0, max(0, len(data) - 1)), max_size=3)):
        if data:
            data[position] ^= 1 << draw(st.integers(0, 7))
    return bytes(data)


@settings(max_examples=150, deadline=None)
@given(damaged_files())
def test_frame_kernel_matches_numpy_reference(data: bytes) -> None:
    buf = np.frombuffer(data, dtype=np.uint8)
    starts, gap_offset, gap_length, gap_reason = kernels.frame(buf)
    offsets, gaps = frame_packets_reference(buf)
    assert np.array_equal(starts, offsets)
    reasons = {kernels.GAP_UNFRAMED: "unframed_bytes", kernels.GAP_TRUNCATED: "truncated_packet"}
    got = [
        (int(o), int(n), reasons[int(r)]) for o, n, r in zip(gap_offset, gap_length, gap_reason, strict=True)
    ]
    assert got == [(o, n, why.value) for o, n, why in gaps]


def test_frame_kernel_on_empty_and_tiny_files() -> None:
    for data in (b"", b"\x08", b"\x08\x09\xc0\x00\x00\x5d", bytes(99)):
        buf = np.frombuffer(data, dtype=np.uint8)
        starts, gap_offset, gap_length, _ = kernels.frame(buf)
        offsets, gaps = frame_packets_reference(buf)
        assert np.array_equal(starts, offsets)
        assert [(int(o), int(n)) for o, n in zip(gap_offset, gap_length, strict=True)] == [
            (o, n) for o, n, _ in gaps
        ]


# --- one satellite's rows: duplicates, losses, latency, columns -------------------------------------------


@st.composite
def satellite_days(draw):
    """Accepted and rejected packets of satellite 5 over two files, with retransmissions (possibly from
    the later file), gaps in the sequence count, the 14-bit wrap and a few packets of satellite 6."""
    n = draw(st.integers(1, 40))
    start = draw(st.integers(0, fmt.SEQUENCE_COUNT_MODULO - 1))
    steps = draw(st.lists(st.sampled_from([1, 1, 1, 2, 5, 0]), min_size=n, max_size=n))
    sequence = (start + np.cumsum(steps)) % fmt.SEQUENCE_COUNT_MODULO
    times = (
        WINDOW_START
        + 100.0
        + np.cumsum(draw(st.lists(st.sampled_from([0.5, 1.0, 0.0]), min_size=n, max_size=n)))
    )
    apid = np.where(np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n))), 5, 6)
    apid[0] = 5
    packets = encode_packets(apid, sequence, times, _valid_payload(n))
    repeats = draw(st.lists(st.integers(0, n - 1), max_size=8))
    wire = packets.tobytes() + b"".join(packets[i : i + 1].tobytes() for i in repeats)
    packets = np.frombuffer(wire, dtype=fmt.PACKET_DTYPE).copy()
    rows = packets.view(np.uint8).reshape(-1, P)
    for i in draw(st.lists(st.integers(0, len(packets) - 1), max_size=3)):
        rows[i, 40] ^= 0x10  # CRC mismatch
    split = draw(st.integers(0, len(packets)))
    return packets, split


@settings(max_examples=80, deadline=None)
@given(satellite_days(), st.integers(1, 30))
def test_satellite_rows_match_the_numpy_references(day, capacity: int) -> None:
    packets, split = day
    received = np.array([WINDOW_END + 900.0, WINDOW_END + 4_000.0])
    names = ["sat-005_a.ccsds", "sat-005_b.ccsds"]
    source = (np.arange(len(packets)) >= split).astype(np.int32)
    batch = _batch(packets, source_index=source, received=received[source])
    histogram = np.zeros(LATENCY_BINS, dtype=np.int64)
    latency_range = np.array([np.inf, -np.inf])
    buffers = [RowBuffer(capacity)]
    written: list[dict[str, np.ndarray]] = []

    def make_room(rows: int) -> RowBuffer:
        current = buffers[-1]
        written.append({k: v.copy() for k, v in current.columns().items()} | {"names": current.file_names})
        buffers.append(RowBuffer(max(rows, capacity)))
        return buffers[-1]

    buffers[0].rows = min(3, capacity)  # rows of an earlier satellite already buffered
    buffers[0].file_names = ["earlier.ccsds"]
    earlier = buffers[0].rows
    checked, kept, duplicates, lost, strays = kernels.satellite_rows(
        packets, source, P * np.arange(len(packets), dtype=np.int64), WINDOW_START, WINDOW_END, 5, names,
        received, LATENCY_BIN_S, histogram, latency_range, buffers[0], make_room,
    )  # fmt: skip
    for got, expected in zip(
        checked, (batch.code, batch.apid, batch.sequence_count, batch.times), strict=True
    ):
        assert np.array_equal(got, expected)

    ok = batch.code == 0
    own = np.flatnonzero(ok & (batch.apid == 5))
    observed_us = np.round(batch.times[own] * 1e6).astype(np.int64)
    repeat = duplicate_mask(batch.apid[own], batch.sequence_count[own], observed_us)
    keep = own[~repeat]
    assert (kept, duplicates, strays) == (len(keep), int(repeat.sum()), int((ok & (batch.apid != 5)).sum()))
    expected_lost = lost_packet_counts(batch.apid[keep], batch.sequence_count[keep], observed_us[~repeat])
    assert lost == expected_lost.get(5, 0)

    latency = batch.received_at[keep] - batch.times[keep]
    bins = np.clip((latency // LATENCY_BIN_S).astype(np.int64), 0, LATENCY_BINS - 1)
    assert np.array_equal(histogram, np.bincount(bins, minlength=LATENCY_BINS))
    if len(keep):
        assert tuple(latency_range) == (latency.min(), latency.max())

    out = buffers[-1]
    assert len(buffers) == (1 if earlier + len(packets) <= capacity else 2)  # room for every packet
    first = earlier if len(buffers) == 1 else 0
    columns = {k: v[..., first:] for k, v in out.columns().items()}  # floats: (20, rows)
    mask = np.zeros(len(packets), dtype=bool)
    mask[keep] = True
    reference = observation_columns_reference(batch, mask)
    base = len(out.file_names) - len(names) if kept else 0
    assert np.array_equal(columns["satellite_id"], reference["satellite_id"])
    assert np.array_equal(columns["sequence_count"], reference["sequence_count"])
    assert np.array_equal(columns["observed_us"], reference["observed_at"].astype(np.int64))
    assert np.array_equal(columns["received_us"], reference["received_at"].astype(np.int64))
    assert np.array_equal(columns["asteroid_id"], reference["asteroid_id"])
    assert np.array_equal(columns["quality_flags"], reference["quality_flags"])
    assert np.array_equal(columns["file_offset"], reference["file_offset"])
    assert np.array_equal(columns["source_file"] - base, reference["source_file"])
    for row, name in enumerate(FLOAT_COLUMNS):
        assert columns["floats"][row].tobytes() == reference[name].tobytes(), name


def test_stream_day_output_does_not_depend_on_the_buffer_size() -> None:
    """Tables handed to the sink are views of a reused buffer; MemorySink must copy them."""
    from astromined.sim.downlink import LinkConditions, simulate_satellite_day
    from astromined.sim.population import generate_population

    day = dt.date(2031, 5, 17)
    population = generate_population(2_000, 3)
    files = []
    for satellite in (1, 2, 3):
        link = LinkConditions(duplicate_rate=0.05, bit_flip_rate=0.01, loss_rate=0.02)
        downlink = simulate_satellite_day(population, day, satellite, 300, 3, link)
        files.append((downlink.file_name, downlink.data))

    def run(batch_rows: int) -> pd.DataFrame:
        sink = MemorySink()
        stream_day(day, ((name, lambda data=data: data) for name, data in files), sink, batch_rows=batch_rows)
        assert len(sink.observations) > (1 if batch_rows < 1_000 else 0)
        frame = pa.concat_tables(sink.observations).to_pandas()
        frame["source_file"] = frame["source_file"].astype(str)
        return frame

    small, large = run(100), run(1_000_000)
    assert len(small) > 800
    assert small.equals(large)  # NaN (radar albedo not measured) equal to NaN in the same place


# --- helpers --------------------------------------------------------------------------------------------


def _valid_payload(n: int) -> np.ndarray:
    payload = np.zeros(n, dtype=fmt.PAYLOAD_DTYPE)
    payload["asteroid_id"] = np.arange(100, 100 + n)
    payload["range_km"] = 1_000.0
    payload["phase_angle_deg"] = 12.5
    payload["apparent_magnitude"] = 16.0
    payload["reflectance"] = 0.2
    payload["thermal_flux"] = 1e4
    payload["radar_albedo"] = np.nan
    payload["lightcurve_amplitude_mag"] = 0.3
    payload["rotation_period_h"] = 6.0
    payload["sensor_temperature_k"] = 180.0
    return payload


def _batch(
    packets: np.ndarray, source_index: np.ndarray | None = None, received: np.ndarray | None = None
) -> PacketBatch:
    """The packets as one validated batch, built with the numpy references (no framing: a damaged
    header must not drop a packet from the comparison)."""
    n = len(packets)
    return PacketBatch(
        packets=packets,
        source_index=np.zeros(n, dtype=np.int32) if source_index is None else source_index,
        offsets=P * np.arange(n, dtype=np.int64),
        received_at=np.full(n, WINDOW_END + 900.0) if received is None else received,
        apid=(packets["primary"]["word0"] & 0x07FF).astype(np.int32),
        sequence_count=(packets["primary"]["word1"] & 0x3FFF).astype(np.int32),
        times=fmt.from_ccsds_time(packets["secondary"]["coarse_time"], packets["secondary"]["fine_time"]),
        code=validate_packets(packets, WINDOW_START, WINDOW_END),
    )
