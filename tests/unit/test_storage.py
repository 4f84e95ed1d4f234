"""Parquet objects in the lake carry AstroMined metadata entries beside pandas' own."""

import pandas as pd

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
