"""Parquet objects in the lake carry AstroMined metadata entries beside pandas' own."""

import pandas as pd
import pytest

from astromined.storage import LocalBlobStore, read_parquet, read_parquet_metadata, write_parquet


def test_metadata_written_with_a_frame_is_read_back_and_the_frame_is_unchanged(tmp_path) -> None:
    store = LocalBlobStore(tmp_path)
    frame = pd.DataFrame({"asteroid_id": [1, 2], "albedo": [0.1, 0.25]})

    write_parquet(
        store, "features/day=2026-11-28/features.parquet", frame, metadata={"calibration_version": 3}
    )

    assert read_parquet_metadata(store, "features/day=2026-11-28/features.parquet") == {
        "calibration_version": "3"
    }
    pd.testing.assert_frame_equal(read_parquet(store, "features/day=2026-11-28/features.parquet"), frame)


def test_a_file_written_without_metadata_has_none(tmp_path) -> None:
    store = LocalBlobStore(tmp_path)
    write_parquet(store, "t.parquet", pd.DataFrame({"x": [1]}))
    assert read_parquet_metadata(store, "t.parquet") == {}  # pandas' own schema entry is not ours


def _killed_writer_pid() -> int:
    """The pid of a process that has exited (a writer killed mid-write)."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.fault("kill", "writer killed mid-write: its temp file and staging folder go on the next run")
def test_sweep_removes_what_killed_writers_left_and_keeps_work_in_progress(tmp_path):
    import os

    from astromined.storage import LocalBlobStore, staging_prefix

    store = LocalBlobStore(tmp_path)
    store.put_bytes("training/set.parquet", b"kept")
    dead = _killed_writer_pid()
    orphan_tmp = tmp_path / "training" / f".set.parquet.pid{dead}.abc123.tmp"
    orphan_tmp.write_bytes(b"half a file")
    orphan_staging = store.staging_dir() / f"ingest-pid{dead}-xyz"
    (orphan_staging / "part").mkdir(parents=True)
    (orphan_staging / "part" / "obs.parquet").write_bytes(b"partial")
    live_tmp = tmp_path / "training" / f".other.parquet.pid{os.getpid()}.def456.tmp"
    live_tmp.write_bytes(b"being written")
    live_staging = store.staging_dir() / f"{staging_prefix('ingest')}live"
    live_staging.mkdir()
    unmarked_old = tmp_path / "models" / ".champion.json.q1w2e3.tmp"
    unmarked_old.parent.mkdir()
    unmarked_old.write_bytes(b"old")
    os.utime(unmarked_old, (1, 1))
    unmarked_new = tmp_path / "models" / ".candidate.json.r4t5y6.tmp"
    unmarked_new.write_bytes(b"recent")

    removed = store.sweep_orphans()

    assert sorted(removed) == sorted(
        [
            f"training/.set.parquet.pid{dead}.abc123.tmp",
            f".staging/ingest-pid{dead}-xyz",
            "models/.champion.json.q1w2e3.tmp",
        ]
    )
    assert not orphan_tmp.exists() and not orphan_staging.exists() and not unmarked_old.exists()
    assert live_tmp.exists() and live_staging.exists() and unmarked_new.exists()
    assert store.get_bytes("training/set.parquet") == b"kept"
    assert store.sweep_orphans() == []


def test_temp_files_and_staging_folders_carry_the_writers_pid(tmp_path, monkeypatch):
    import os
    import re

    from astromined.storage import LocalBlobStore
    from astromined.telemetry.parquet_sink import ParquetDaySink

    store = LocalBlobStore(tmp_path)
    seen = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (seen.append(src), real_replace(src, dst))[1])
    store.put_bytes("a/b.json", b"{}")
    assert re.fullmatch(rf"\.b\.json\.pid{os.getpid()}\..+\.tmp", os.path.basename(seen[0]))
    with ParquetDaySink(store.staging_dir()) as sink:
        assert sink.directory.name.startswith(f"ingest-pid{os.getpid()}-")
