"""Our wire format against maintained CCSDS libraries: spacepackets (headers, CRC) and ccsdspy (decoding).

The encoder, the decoder and the simulator share one definition of the layout (packet_format.py), so their
own tests cannot catch a layout that is self-consistent but not CCSDS 133.0-B-2. Independent
implementations can: every primary header must parse identically in spacepackets, our CRC field must be
spacepackets' CRC-16/CCITT, and ccsdspy, given the documented field list, must decode the same values.
"""

from __future__ import annotations

import datetime as dt
import io

import ccsdspy
import numpy as np
import pandas as pd
import pytest
from ccsdspy.converters import DatetimeConverter
from spacepackets.ccsds import PacketId, PacketType, SequenceFlags, SpacePacketHeader, parse_space_packets
from spacepackets.ecss import check_pus_crc

from astromined.sim.downlink import LinkConditions, simulate_satellite_day
from astromined.sim.population import generate_population
from astromined.telemetry import packet_format as fmt
from astromined.telemetry.decode import QuarantineReason, decode_file, reflectance_columns
from astromined.telemetry.encode import encode_packets

try:  # spacepackets < 0.25 exposed its crcmod-built CRC-16/CCITT-FALSE here
    from spacepackets.crc import CRC16_CCITT_FUNC as spacepackets_crc16
except ImportError:  # later versions compute it with fastcrc's CRC-16/IBM-3740 (the same CRC)
    from fastcrc.crc16 import ibm_3740 as spacepackets_crc16

NO_FAULTS = LinkConditions(duplicate_rate=0.0, bit_flip_rate=0.0, loss_rate=0.0, truncated_file_rate=0.0)
# On this day a satellite sending 300 packets starts at sequence count 16320, so the 14-bit count wraps.
WRAP_DAY = dt.date(2026, 6, 25)
SATELLITE = 377  # APID > 255: the 11-bit APID spans both header octets
OBSERVATIONS = 300


def _random_packets(n: int = 2_000, seed: int = 11) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    apid = np.concatenate([[1, 255, 256, 500], rng.integers(1, 501, n - 4)])
    sequence = np.concatenate([[0, 16_383, 16_384, 70_001], rng.integers(0, 1 << 20, n - 4)])
    unix_time = rng.uniform(0.0, 3.9e9, n)  # 1970 .. 2093, inside the 32-bit CUC coarse range
    payload = np.zeros(n, dtype=fmt.PAYLOAD_DTYPE)
    payload["asteroid_id"] = rng.integers(0, 1 << 32, n, dtype=np.uint64)
    for name in fmt.PAYLOAD_DTYPE.names:
        if name not in ("asteroid_id", "quality_flags"):
            payload[name] = rng.normal(0.0, 1e3, payload[name].shape)
    payload["quality_flags"] = rng.integers(0, 1 << 16, n)
    packets = encode_packets(apid, sequence, unix_time, payload)
    return packets, apid, sequence, unix_time


def _split(data: bytes) -> list[bytes]:
    return [data[i : i + fmt.PACKET_SIZE] for i in range(0, len(data), fmt.PACKET_SIZE)]


@pytest.fixture(scope="module")
def clean_downlink():
    population = generate_population(4_000, 42)
    return simulate_satellite_day(population, WRAP_DAY, SATELLITE, OBSERVATIONS, 42, link=NO_FAULTS)


def test_crc_check_value_matches_spacepackets():
    check = np.frombuffer(b"123456789", dtype=np.uint8)[None, :]
    assert int(fmt.crc16_ccitt(check)[0]) == spacepackets_crc16(b"123456789") == 0x29B1


def test_spacepackets_parses_every_encoded_primary_header_identically():
    packets, apid, sequence, _ = _random_packets()
    raw = packets.tobytes()
    for i, packet in enumerate(_split(raw)):
        header = SpacePacketHeader.unpack(packet)
        assert header.ccsds_version == 0
        assert header.packet_type == PacketType.TM
        assert header.sec_header_flag is True
        assert header.apid == apid[i]
        assert header.seq_flags == SequenceFlags.UNSEGMENTED
        assert header.seq_count == sequence[i] % fmt.SEQUENCE_COUNT_MODULO
        assert header.data_len == fmt.DATA_LENGTH_FIELD == 93
        assert header.packet_len == fmt.PACKET_SIZE
        # ... and spacepackets, encoding the same header fields, writes the same six octets.
        rebuilt = SpacePacketHeader(
            packet_type=PacketType.TM,
            apid=int(apid[i]),
            seq_count=int(sequence[i] % fmt.SEQUENCE_COUNT_MODULO),
            data_len=fmt.DATA_LENGTH_FIELD,
            sec_header_flag=True,
            seq_flags=SequenceFlags.UNSEGMENTED,
        )
        assert bytes(rebuilt.pack()) == packet[:6]


def test_spacepackets_crc_agrees_with_our_crc_field():
    packets, _, _, _ = _random_packets(seed=12)
    for i, packet in enumerate(_split(packets.tobytes())):
        field = int.from_bytes(packet[fmt.CRC_OFFSET :], "big")
        assert field == int(packets["crc"][i]) == spacepackets_crc16(packet[: fmt.CRC_OFFSET])
        assert check_pus_crc(packet)  # CRC over the packet including its CRC field leaves no remainder


def test_crc_verdicts_agree_on_a_downlink_with_flipped_bits():
    population = generate_population(4_000, 42)
    link = LinkConditions(duplicate_rate=0.0, bit_flip_rate=0.05, loss_rate=0.0, truncated_file_rate=0.0)
    downlink = simulate_satellite_day(population, WRAP_DAY, SATELLITE, OBSERVATIONS, 42, link=link)
    data = downlink.data
    assert len(data) == OBSERVATIONS * fmt.PACKET_SIZE  # flips damage payloads, never the framing
    decoded = decode_file(data, downlink.file_name)
    accepted = set(decoded.observations["file_offset"])
    rejected = set(
        decoded.quarantine.loc[decoded.quarantine["reason"] == QuarantineReason.CRC_MISMATCH, "offset"]
    )
    assert rejected, "the fault rate should have flipped some bits"
    assert accepted | rejected == set(range(0, len(data), fmt.PACKET_SIZE))
    for offset in range(0, len(data), fmt.PACKET_SIZE):
        assert check_pus_crc(data[offset : offset + fmt.PACKET_SIZE]) == (offset in accepted), offset


def test_spacepackets_frames_a_simulated_file_like_our_decoder(clean_downlink):
    data = clean_downlink.data
    result = parse_space_packets(data, [PacketId(PacketType.TM, True, SATELLITE)])
    assert result.skipped_ranges == []
    assert result.scanned_bytes == len(data)
    assert [bytes(p) for p in result.tm_list] == _split(data)

    decoded = decode_file(data, clean_downlink.file_name)
    assert decoded.quarantine.empty
    headers = [SpacePacketHeader.unpack(p) for p in result.tm_list]
    assert [h.apid for h in headers] == decoded.observations["satellite_id"].tolist()
    assert [h.seq_count for h in headers] == decoded.observations["sequence_count"].tolist()
    counts = decoded.observations["sequence_count"].to_numpy()
    assert counts[0] == 16_320 and counts[-1] == (16_320 + OBSERVATIONS - 1) % fmt.SEQUENCE_COUNT_MODULO
    assert all(check_pus_crc(p) for p in result.tm_list)


# docs/telemetry-format.md, written out independently of packet_format.py:
# (field, ccsdspy data type, octet offset in the packet, octets per element, elements)
DOCUMENTED_LAYOUT = [
    ("coarse_time", "uint", 6, 4, 1),
    ("fine_time", "uint", 10, 2, 1),
    ("asteroid_id", "uint", 12, 4, 1),
    ("range_km", "float", 16, 4, 1),
    ("phase_angle_deg", "float", 20, 4, 1),
    ("apparent_magnitude", "float", 24, 4, 1),
    ("reflectance", "float", 28, 4, fmt.N_BANDS),
    ("thermal_flux", "float", 76, 4, 1),
    ("radar_albedo", "float", 80, 4, 1),
    ("lightcurve_amplitude_mag", "float", 84, 4, 1),
    ("rotation_period_h", "float", 88, 4, 1),
    ("sensor_temperature_k", "float", 92, 4, 1),
    ("quality_flags", "uint", 96, 2, 1),
    ("crc", "uint", 98, 2, 1),
]


def test_documented_layout_mirrors_packet_format():
    kinds = {"u": "uint", "f": "float"}
    mirrored = [
        (name, kinds[dtype.kind], 6 + offset, dtype.itemsize, 1)
        for name, (dtype, offset) in fmt.SECONDARY_HEADER_DTYPE.fields.items()
    ]
    for name, (dtype, offset) in fmt.PAYLOAD_DTYPE.fields.items():
        base = dtype.base if dtype.subdtype else dtype
        count = int(np.prod(dtype.shape)) if dtype.subdtype else 1
        mirrored.append((name, kinds[base.kind], 12 + offset, base.itemsize, count))
    mirrored.append(("crc", "uint", fmt.CRC_OFFSET, 2, 1))
    assert mirrored == DOCUMENTED_LAYOUT
    # Every multi-octet field is big-endian, as the document says (ccsdspy's default byte order).
    for dtype, _ in [*fmt.SECONDARY_HEADER_DTYPE.fields.values(), *fmt.PAYLOAD_DTYPE.fields.values()]:
        assert dtype.base.str.startswith(">"), dtype


def _ccsdspy_definition() -> ccsdspy.FixedLength:
    """ccsdspy's field list for our packet: the CUC secondary header, the payload and the CRC."""
    fields: list[ccsdspy.PacketField] = []
    for name, data_type, octet, size, count in DOCUMENTED_LAYOUT:
        if count > 1:
            field = ccsdspy.PacketArray(
                name=name, data_type=data_type, bit_length=8 * size, bit_offset=8 * octet, array_shape=count
            )
        else:
            field = ccsdspy.PacketField(
                name=name, data_type=data_type, bit_length=8 * size, bit_offset=8 * octet
            )
        fields.append(field)
    definition = ccsdspy.FixedLength(fields, apid=SATELLITE, name="astromined_observation")
    definition.add_converted_field(
        "coarse_time", "coarse_utc", DatetimeConverter(since=fmt.CCSDS_EPOCH, units="seconds")
    )
    return definition


def test_ccsdspy_decodes_the_same_values_as_our_decoder(clean_downlink):
    data = clean_downlink.data
    theirs = _ccsdspy_definition().load(io.BytesIO(data), include_primary_header=True)
    ours = decode_file(data, clean_downlink.file_name).observations
    n = OBSERVATIONS
    assert len(ours) == n and all(len(values) == n for values in theirs.values())

    assert (theirs["CCSDS_VERSION_NUMBER"] == 0).all()
    assert (theirs["CCSDS_PACKET_TYPE"] == fmt.PACKET_TYPE_TELEMETRY).all()
    assert (theirs["CCSDS_SECONDARY_FLAG"] == 1).all()
    assert (theirs["CCSDS_SEQUENCE_FLAG"] == fmt.SEQUENCE_FLAGS_UNSEGMENTED).all()
    assert (theirs["CCSDS_PACKET_LENGTH"] == fmt.DATA_LENGTH_FIELD).all()
    np.testing.assert_array_equal(theirs["CCSDS_APID"], ours["satellite_id"])
    np.testing.assert_array_equal(theirs["CCSDS_SEQUENCE_COUNT"], ours["sequence_count"])

    # Time: ccsdspy's converter for the CUC coarse seconds, plus the 1/65536 s fine time.
    coarse_utc = pd.to_datetime(list(theirs["coarse_utc"]), utc=True)
    observed = ours["observed_at"]
    np.testing.assert_array_equal(coarse_utc.to_numpy(), observed.dt.floor("s").to_numpy())
    fraction_s = (observed - observed.dt.floor("s")).dt.total_seconds().to_numpy()
    np.testing.assert_allclose(fraction_s, theirs["fine_time"] / fmt.FINE_TIME_UNITS_PER_SECOND, atol=1e-6)
    unix = fmt.from_ccsds_time(theirs["coarse_time"], theirs["fine_time"])
    np.testing.assert_array_equal(
        pd.to_datetime(np.round(unix * 1e6).astype(np.int64), unit="us", utc=True), observed
    )

    np.testing.assert_array_equal(theirs["asteroid_id"], ours["asteroid_id"])
    for name in fmt.PAYLOAD_DTYPE.names:
        if name in ("asteroid_id", "reflectance"):
            continue
        np.testing.assert_array_equal(theirs[name], ours[name], err_msg=name)  # NaN == NaN (radar)
    assert np.isnan(theirs["radar_albedo"]).any() and not np.isnan(theirs["radar_albedo"]).all()
    assert theirs["reflectance"].shape == (n, fmt.N_BANDS)
    np.testing.assert_array_equal(theirs["reflectance"], ours[reflectance_columns()].to_numpy())

    crc = [spacepackets_crc16(p[: fmt.CRC_OFFSET]) for p in _split(data)]
    np.testing.assert_array_equal(theirs["crc"], crc)
