"""ingest_day over simulated downlinks: reconciliation, unrecognized and empty files, empty days, latency,
which satellites are missing and why."""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd
import pytest

from astromined.sim.downlink import Downlink, LinkConditions, simulate_satellite_day
from astromined.sim.population import generate_population
from astromined.telemetry.decode import QUARANTINE_COLUMNS
from astromined.telemetry.downlink_files import downlink_file_name
from astromined.telemetry.ingest import (
    EMPTY_FILE,
    UNRECOGNIZED_FILE,
    DayIngest,
    compact_ids,
    day_window,
    ingest_day,
)
from astromined.telemetry.packet_format import PACKET_SIZE

DAY = dt.date(2031, 5, 17)
SATELLITES = (1, 2, 3, 17)
OBSERVATIONS = 200
SEED = 5
# Fault rates far above nominal so that every kind of fault shows up in a few hundred packets.
FAULTY = LinkConditions(duplicate_rate=0.05, bit_flip_rate=0.03, loss_rate=0.03, truncated_file_rate=1.0)
CLEAN = LinkConditions(duplicate_rate=0.0, bit_flip_rate=0.0, loss_rate=0.0, truncated_file_rate=0.0)


def simulate(day: dt.date = DAY, link: LinkConditions = FAULTY, satellites=SATELLITES) -> list[Downlink]:
    population = generate_population(2_000, 11)
    return [simulate_satellite_day(population, day, s, OBSERVATIONS, SEED, link) for s in satellites]


def as_files(downlinks: list[Downlink]) -> list[tuple[str, object]]:
    return [(f"downlinks/{DAY.isoformat()}/{d.file_name}", lambda d=d: d.data) for d in downlinks]


def assert_reconciles(result: DayIngest) -> None:
    assert result.packets_in == result.packets_ok + result.packets_quarantined + result.duplicates
    assert result.reconciles
    assert sum(result.quarantine_by_reason().values()) == result.packets_quarantined
    # Every octet of every file is in an accepted packet, a dropped duplicate or a quarantine row.
    accepted = PACKET_SIZE * (result.packets_ok + result.duplicates)
    assert result.bytes_in == accepted + int(result.quarantine["length"].sum())


@pytest.fixture(scope="module")
def faulty_day() -> tuple[list[Downlink], DayIngest, list[str]]:
    downlinks = simulate()
    seen: list[str] = []
    return downlinks, ingest_day(DAY, as_files(downlinks), on_file=seen.append), seen


def test_ingest_reconciles_over_several_faulty_files(faulty_day) -> None:
    downlinks, result, seen = faulty_day
    assert_reconciles(result)
    assert result.day == DAY
    assert result.files == len(SATELLITES)
    assert result.bytes_in == sum(len(d.data) for d in downlinks)
    assert result.duplicates > 0
    reasons = result.quarantine_by_reason()
    assert reasons.get("crc_mismatch", 0) > 0
    # truncated_file_rate=1.0: every file ends in a partial packet (under 6 octets it is not even a header).
    q = result.quarantine
    for d, (name, _) in zip(downlinks, as_files(downlinks), strict=True):
        assert len(d.data) % PACKET_SIZE != 0
        tail = q[(q["source_file"] == name) & (q["offset"] + q["length"] == len(d.data))]
        assert len(tail) == 1
        assert tail["reason"].iloc[0] in {"truncated_packet", "unframed_bytes"}
        assert tail["length"].iloc[0] == len(d.data) % PACKET_SIZE
    assert int(result.lost_by_satellite.sum()) > 0
    assert seen == [name for name, _ in as_files(downlinks)]


def test_ingested_observations_are_unique_sorted_and_inside_the_day(faulty_day) -> None:
    _, result, _ = faulty_day
    obs = result.observations
    assert set(obs["satellite_id"]) == set(SATELLITES)
    assert not obs.duplicated(["satellite_id", "sequence_count", "observed_at"]).any()
    assert obs.equals(
        obs.sort_values(["satellite_id", "observed_at", "sequence_count"]).reset_index(drop=True)
    )
    start, end = day_window(DAY)
    assert obs["observed_at"].min() >= pd.Timestamp(start, unit="s", tz="UTC")
    assert obs["observed_at"].max() < pd.Timestamp(end, unit="s", tz="UTC")
    assert list(result.quarantine.columns) == QUARANTINE_COLUMNS
    assert sorted(result.lost_by_satellite.index) == sorted(SATELLITES)


def test_clean_links_lose_and_quarantine_nothing() -> None:
    result = ingest_day(DAY, as_files(simulate(link=CLEAN)))
    assert_reconciles(result)
    assert result.packets_in == result.packets_ok == OBSERVATIONS * len(SATELLITES)
    assert result.quarantine.empty
    assert result.duplicates == 0
    assert result.lost_by_satellite.to_dict() == dict.fromkeys(SATELLITES, 0)


def test_the_same_downlink_twice_is_all_duplicates() -> None:
    downlink = simulate(link=CLEAN, satellites=(4,))[0]
    renamed = downlink.file_name
    later = (downlink.received_at + dt.timedelta(minutes=5)).strftime("sat-004_%Y%m%dT%H%M%SZ.ccsds")
    result = ingest_day(DAY, [(renamed, lambda: downlink.data), (later, lambda: downlink.data)])
    assert_reconciles(result)
    assert result.duplicates == OBSERVATIONS
    assert result.packets_ok == OBSERVATIONS
    assert set(result.observations["source_file"]) == {renamed}


@pytest.mark.parametrize(
    "name",
    [
        "notes.txt",
        "downlinks/2031-05-17/sat-007_20310518T001500Z.bin",
        "sat-7_20310518T001500Z.ccsds",
        "sat-007-20310518T001500Z.ccsds",
        "SAT-007_20310518T001500Z.ccsds",
        "sat-007_20311318T001500Z.ccsds",
    ],
)
def test_unrecognized_file_is_quarantined_by_name(name: str) -> None:
    downlinks = simulate(link=CLEAN, satellites=(1, 2))
    junk = b"\x89PNG\r\n\x1a\n" + b"not a downlink " * 20
    files = [*as_files(downlinks), (name, lambda: junk)]
    seen: list[str] = []
    result = ingest_day(DAY, files, on_file=seen.append)
    assert_reconciles(result)
    assert result.files == 3
    assert result.bytes_in == sum(len(d.data) for d in downlinks) + len(junk)
    assert result.packets_ok == 2 * OBSERVATIONS
    rows = result.quarantine[result.quarantine["reason"] == UNRECOGNIZED_FILE]
    assert UNRECOGNIZED_FILE == "unrecognized_file"
    assert len(rows) == 1 == result.packets_quarantined
    row = rows.iloc[0]
    assert row["source_file"] == name
    assert name in row["detail"]
    assert (row["offset"], row["length"], row["satellite_id"]) == (0, len(junk), -1)
    assert row["raw"] == junk[:PACKET_SIZE]
    assert seen.count(name) == 1  # progress counts every file, recognized or not


def test_day_of_only_unrecognized_files_still_reconciles() -> None:
    result = ingest_day(DAY, [("README.md", lambda: b"hello")])
    assert_reconciles(result)
    assert result.packets_in == 1
    assert result.observations.empty
    assert "satellite_id" in result.observations.columns
    assert result.lost_by_satellite.empty
    assert result.latency_percentiles_s() == {}


def test_empty_day_raises_naming_the_day() -> None:
    with pytest.raises(FileNotFoundError, match=re.escape("2031-05-17")):
        ingest_day(DAY, [])


def test_files_of_another_day_are_outside_the_partition() -> None:
    next_day = simulate(day=DAY + dt.timedelta(days=1), link=CLEAN, satellites=(5,))
    result = ingest_day(DAY, as_files(next_day))
    assert_reconciles(result)
    assert result.packets_ok == 0
    assert result.quarantine_by_reason() == {"timestamp_outside_partition": OBSERVATIONS}


def test_files_are_loaded_lazily_once_each() -> None:
    downlinks = simulate(link=CLEAN, satellites=(1, 2, 3))
    loads: list[str] = []

    def files():
        for d in downlinks:
            yield d.file_name, lambda d=d: loads.append(d.file_name) or d.data

    result = ingest_day(DAY, files())
    assert loads == [d.file_name for d in downlinks]
    assert result.files == 3


def test_latency_percentiles_are_positive_and_ordered(faulty_day) -> None:
    downlinks, result, _ = faulty_day
    latency = result.latency_percentiles_s()
    assert set(latency) == {"p50", "p90", "p99"}
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"]
    # Observed during the day, received the next day after 600-1500 s of light delay.
    assert latency["p99"] <= 86_400 + 1_500
    received = {d.file_name: d.received_at for d in downlinks}
    per_file = result.observations.groupby("source_file")["received_at"].first()
    assert {name.rsplit("/", 1)[-1]: ts.to_pydatetime() for name, ts in per_file.items()} == received


def test_relayed_packets_are_kept_once_and_written_with_their_own_satellite_id() -> None:
    """A file labelled sat-001 that carries satellite 2's packets (valid CRC): they are held back to the
    end of the day; those satellite 2 also sent itself are duplicates, the others are accepted."""
    own_1, own_2 = simulate(link=CLEAN, satellites=(1, 2))
    relayed = own_2.data[: 50 * PACKET_SIZE]  # 50 packets satellite 2 sent itself as well
    relay_name = (own_1.received_at + dt.timedelta(minutes=1)).strftime("sat-001_%Y%m%dT%H%M%SZ.ccsds")
    files = [
        (own_1.file_name, lambda: own_1.data),
        (relay_name, lambda: relayed),
        (own_2.file_name, lambda: own_2.data[50 * PACKET_SIZE :]),
    ]
    result = ingest_day(DAY, files)
    assert_reconciles(result)
    # Satellite 2's first 50 packets came only through the relay: kept once, none counted twice.
    assert result.duplicates == 0
    assert result.packets_ok == 2 * OBSERVATIONS
    from_relay = result.observations[result.observations["source_file"] == relay_name]
    assert len(from_relay) == 50 and set(from_relay["satellite_id"]) == {2}

    # The relay retransmitted: the second copies of the relayed packets are duplicates among the strays.
    again = (own_1.received_at + dt.timedelta(minutes=2)).strftime("sat-001_%Y%m%dT%H%M%SZ.ccsds")
    result = ingest_day(DAY, [*files, (again, lambda: relayed)])
    assert_reconciles(result)
    assert result.duplicates == 50
    assert result.packets_ok == 2 * OBSERVATIONS
    assert not result.observations.duplicated(["satellite_id", "sequence_count", "observed_at"]).any()


# --- files with nothing (or next to nothing) in them ----------------------------------------------------

RECEIVED = dt.datetime(2031, 5, 18, 0, 30, tzinfo=dt.UTC)


def assert_every_file_accounted(result: DayIngest, names: list[str]) -> None:
    """Each file of the day left a trace: an accepted row or a quarantine row naming it."""
    traced = set(result.observations["source_file"]) | set(result.quarantine["source_file"])
    assert traced >= set(names), set(names) - traced


@pytest.mark.fault("bad-input", "zero-length downlink file: an empty_file quarantine row naming it")
def test_zero_length_file_is_quarantined_as_empty_file() -> None:
    downlinks = simulate(link=CLEAN, satellites=(1, 2))
    empty_name = f"downlinks/{DAY.isoformat()}/{downlink_file_name(3, RECEIVED)}"
    files = [*as_files(downlinks), (empty_name, lambda: b"")]
    result = ingest_day(DAY, files)
    assert_reconciles(result)
    assert_every_file_accounted(result, [name for name, _ in files])
    assert EMPTY_FILE == "empty_file"
    assert result.files == 3
    assert result.packets_in == 2 * OBSERVATIONS + 1  # the empty file is one unit, like an unrecognized one
    assert result.packets_ok == 2 * OBSERVATIONS
    assert result.packets_quarantined == 1
    assert result.quarantine_by_reason() == {EMPTY_FILE: 1}
    row = result.quarantine.iloc[0]
    assert row["source_file"] == empty_name
    assert empty_name in row["detail"] and "empty" in row["detail"]
    assert (row["offset"], row["length"], row["satellite_id"], row["raw"]) == (0, 0, 3, b"")


@pytest.mark.fault("bad-input", "an empty file next to a good file of the same satellite")
def test_empty_file_beside_a_good_file_of_the_same_satellite() -> None:
    [downlink] = simulate(link=FAULTY, satellites=(4,))
    before = (downlink.received_at - dt.timedelta(hours=1)).strftime("sat-004_%Y%m%dT%H%M%SZ.ccsds")
    after = (downlink.received_at + dt.timedelta(hours=1)).strftime("sat-004_%Y%m%dT%H%M%SZ.ccsds")
    files = [(before, lambda: b""), (downlink.file_name, lambda: downlink.data), (after, lambda: b"")]
    alone = ingest_day(DAY, files[1:2])
    result = ingest_day(DAY, files)
    assert_reconciles(result)
    assert result.packets_in == alone.packets_in + 2
    assert result.packets_ok == alone.packets_ok
    assert result.packets_quarantined == alone.packets_quarantined + 2
    q = result.quarantine
    assert list(q.loc[q["reason"] == EMPTY_FILE, "source_file"]) == [before, after]
    assert list(q["source_file"]) == sorted(q["source_file"])  # still in file order
    pd.testing.assert_frame_equal(result.observations, alone.observations)


def _named(satellite: int, minute: int = 0) -> str:
    return downlink_file_name(satellite, RECEIVED + dt.timedelta(minutes=minute))


HEADER = bytes([0x08, 0x05, 0xC0, 0x00, 0x00, 0x5D])
# name, contents, the reasons its quarantine rows carry
BAD_FILES = {
    "zero-length": (_named(5), b"", [EMPTY_FILE]),
    "three octets of a header": (_named(5), HEADER[:3], ["unframed_bytes"]),
    "a whole header, no more": (_named(5), HEADER, ["truncated_packet"]),
    "half a packet": (_named(5), HEADER + bytes(44), ["truncated_packet"]),
    "only zero octets": (_named(5), bytes(1_000), ["unframed_bytes"]),
    "one zero octet": (_named(5), b"\x00", ["unframed_bytes"]),
    "name that does not parse": ("sat-5.ccsds", HEADER + bytes(94), [UNRECOGNIZED_FILE]),
    "name that does not parse, empty": ("sat-005_.ccsds", b"", [UNRECOGNIZED_FILE]),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
@pytest.mark.fault("bad-input", "near-empty, zero-filled, headless or misnamed file: quarantined by reason")
def test_every_bad_file_leaves_a_quarantine_row_and_the_day_reconciles(case: str) -> None:
    name, data, reasons = BAD_FILES[case]
    downlinks = simulate(link=CLEAN, satellites=(1,))
    files = [*as_files(downlinks), (name, lambda: data)]
    result = ingest_day(DAY, files)
    assert_reconciles(result)
    assert_every_file_accounted(result, [n for n, _ in files])
    assert result.packets_ok == OBSERVATIONS
    rows = result.quarantine[result.quarantine["source_file"] == name]
    assert list(rows["reason"]) == reasons
    assert int(rows["length"].sum()) == len(data)
    assert result.packets_in == OBSERVATIONS + len(rows)


# --- which satellites are missing, and why ------------------------------------------------------------------


def test_compact_ids_writes_ranges() -> None:
    assert compact_ids([]) == ""
    assert compact_ids([7]) == "7"
    assert compact_ids([10, 9, 1, 2, 3, 5, 3]) == "1-3, 5, 9-10"
    assert compact_ids(range(1, 501)) == "1-500"


@pytest.mark.fault("bad-input", "missing satellites named: no file, only empty files, all quarantined")
def test_coverage_names_missing_satellites_and_why() -> None:
    downlinks = simulate(link=CLEAN, satellites=(1, 2))
    files = [
        *as_files(downlinks),
        (_named(3), lambda: b""),  # only an empty file
        (_named(3, minute=5), lambda: b""),
        (_named(4), lambda: bytes(range(256)) * 2),  # every octet quarantined
        (_named(4, minute=5), lambda: b""),
        (_named(5), lambda: downlinks[0].data[: 10 * PACKET_SIZE]),  # carries satellite 1's packets only
    ]
    result = ingest_day(DAY, files)
    assert_reconciles(result)
    coverage = result.coverage(range(1, 11))
    assert not coverage.complete
    assert (coverage.expected, coverage.reporting) == (10, 2)
    assert coverage.missing == tuple(range(3, 11))
    assert coverage.only_empty_files == (3,)
    assert coverage.only_quarantined == (4,)
    assert coverage.only_other_satellites == (5,)
    assert coverage.without_files == tuple(range(6, 11))
    assert coverage.unexpected == ()
    assert coverage.describe() == (
        "8 of 10 expected satellites sent no accepted packet: 3-10 (no file: 6-10; only empty files: 3; "
        "every packet quarantined: 4; only other satellites' packets: 5)"
    )


def test_a_satellite_outside_the_fleet_does_not_hide_a_missing_one() -> None:
    """Satellite 9 reports, satellite 3 does not: three satellites report, but not the expected three."""
    result = ingest_day(DAY, as_files(simulate(link=CLEAN, satellites=(1, 2, 9))))
    coverage = result.coverage([1, 2, 3])
    assert result.satellites_reporting == 3
    assert coverage.missing == (3,) == coverage.without_files
    assert coverage.unexpected == (9,)
    assert not coverage.complete


def test_complete_coverage() -> None:
    coverage = ingest_day(DAY, as_files(simulate(link=FAULTY))).coverage(SATELLITES)
    assert coverage.complete and coverage.missing == ()
    assert coverage.reporting == len(SATELLITES)
    assert coverage.describe() == f"all {len(SATELLITES)} expected satellites sent accepted packets"
