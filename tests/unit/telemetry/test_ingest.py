"""ingest_day over simulated downlinks: reconciliation, unrecognized files, empty days, latency."""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd
import pytest

from astromined.sim.downlink import Downlink, LinkConditions, simulate_satellite_day
from astromined.sim.population import generate_population
from astromined.telemetry.decode import QUARANTINE_COLUMNS
from astromined.telemetry.ingest import UNRECOGNIZED_FILE, DayIngest, day_window, ingest_day
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
