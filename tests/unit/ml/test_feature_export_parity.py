"""The feature code is the single source of truth for model inputs: from the same raw observation rows,
the signed int8 uplink package (numpy, on board) and the float torch model normalize identically and
predict the same classes."""

from __future__ import annotations

import copy
import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch

from astromined.features.engineering import MODEL_FEATURES, aggregate_by_asteroid, model_inputs
from astromined.features.training_set import split_of
from astromined.ml.model import ArchitectureConfig
from astromined.ml.quantize import LAYERS, from_npz_bytes, int8_forward, normalize, quantize, to_npz_bytes
from astromined.ml.train import TrainConfig, predict, train_model
from astromined.ml.uplink import (
    build_package,
    generate_private_key_pem,
    load_private_key,
    open_package,
    public_key_pem,
)
from astromined.sim.downlink import simulate_satellite_day
from astromined.sim.instrument import nominal_response
from astromined.sim.population import generate_population
from astromined.taxonomy import COMPLEX_INDEX, COMPLEXES
from astromined.telemetry.ingest import ingest_day

DAY = dt.date(2031, 5, 17)
SEED = 13


@pytest.fixture(scope="module")
def raw_observations() -> pd.DataFrame:
    """A simulated day's observation table, as raw_telemetry decodes it (nominal link faults included)."""
    population = generate_population(800, SEED)
    downlinks = [simulate_satellite_day(population, DAY, s, 20, SEED) for s in range(1, 151)]
    day = ingest_day(DAY, [(d.file_name, lambda d=d: d.data) for d in downlinks])
    assert day.stats.reconciles
    return day.observations


@pytest.fixture(scope="module")
def features(raw_observations) -> pd.DataFrame:
    return aggregate_by_asteroid(raw_observations, nominal_response(SEED))


@pytest.fixture(scope="module")
def model_and_package(features):
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        truth = generate_population(800, SEED).table.set_index("asteroid_id").loc[features["asteroid_id"]]
        x = model_inputs(features)
        y_class = truth["complex"].map(COMPLEX_INDEX).to_numpy(np.int64)
        y_metal = truth["metal_richness"].to_numpy(np.float32)
        train = split_of(features["asteroid_id"].to_numpy()) != "validation"
        architecture = ArchitectureConfig(feature_names=tuple(MODEL_FEATURES), classes=COMPLEXES, hidden=32)
        config = TrainConfig(max_epochs=15, patience=15, batch_size=128, learning_rate=1e-2, seed=3)
        model = train_model(
            architecture,
            x[train],
            y_class[train],
            y_metal[train],
            x[~train],
            y_class[~train],
            y_metal[~train],
            torch.device("cpu"),
            config,
        ).model
    finally:
        torch.set_num_threads(previous)
    key = load_private_key(generate_private_key_pem())
    package, _ = build_package(
        {"model_int8.npz": to_npz_bytes(quantize(model))},
        {"model_version": "m-parity", "classes": list(COMPLEXES), "feature_names": list(MODEL_FEATURES)},
        key,
    )
    return model, x[train], package, public_key_pem(key)


def test_the_asset_path_from_arrow_equals_the_pandas_path(raw_observations, features) -> None:
    from_arrow = aggregate_by_asteroid(pa.Table.from_pandas(raw_observations), nominal_response(SEED))
    pd.testing.assert_frame_equal(from_arrow, features, check_exact=True)


def test_package_and_torch_model_normalize_the_same_inputs(raw_observations, model_and_package) -> None:
    model, x_train, package, public_pem = model_and_package
    manifest, members = open_package(package, public_pem)
    arrays = from_npz_bytes(members["model_int8.npz"])
    assert manifest["feature_names"] == MODEL_FEATURES == list(model.config.feature_names)
    # The normalization both carry is that of the feature code's training inputs.
    np.testing.assert_allclose(arrays["feature_mean"], x_train.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(arrays["feature_std"], x_train.std(axis=0, ddof=1), rtol=1e-4)

    # From raw rows again, as the on-board software would: the same module, then the package.
    x = model_inputs(aggregate_by_asteroid(raw_observations, nominal_response(SEED)))
    with torch.no_grad():
        z_torch = model.normalize(torch.as_tensor(x)).numpy()
    z_package = normalize(arrays, x)
    assert z_package.shape == z_torch.shape == (len(x), len(MODEL_FEATURES))
    np.testing.assert_allclose(z_package, z_torch, rtol=1e-6, atol=1e-6)


def test_package_and_torch_model_predict_the_same_classes(features, model_and_package) -> None:
    model, _, package, public_pem = model_and_package
    _, members = open_package(package, public_pem)
    arrays = from_npz_bytes(members["model_int8.npz"])
    x = model_inputs(features)
    q_probabilities, q_metal = int8_forward(arrays, x)

    # The torch network carrying the package's own (dequantized) weights: the same function of the same
    # inputs, so the same classes on every row; only float rounding may differ.
    dequantized = copy.deepcopy(model)
    with torch.no_grad():
        for layer in LAYERS:
            module = dequantized.get_submodule(layer)
            weight = arrays[f"{layer}.weight_q"].astype(np.float32) * arrays[f"{layer}.scale"][:, None]
            module.weight.copy_(torch.as_tensor(weight))
    d_probabilities, d_metal = predict(dequantized, x)
    np.testing.assert_array_equal(q_probabilities.argmax(axis=1), d_probabilities.argmax(axis=1))
    np.testing.assert_allclose(q_probabilities, d_probabilities, atol=1e-5)
    np.testing.assert_allclose(q_metal, d_metal, atol=1e-5)

    # The float model itself: int8 rounding may only flip rows the float model can barely decide.
    probabilities, metal = predict(model, x)
    top2 = np.sort(probabilities, axis=1)[:, -2:]
    decided = top2[:, 1] - top2[:, 0] > 0.05
    np.testing.assert_array_equal(
        q_probabilities.argmax(axis=1)[decided], probabilities.argmax(axis=1)[decided]
    )
    assert np.mean(q_probabilities.argmax(axis=1) == probabilities.argmax(axis=1)) >= 0.99
    assert np.abs(q_metal - metal).max() < 0.02
    assert len(np.unique(probabilities.argmax(axis=1))) >= 4  # a real classifier, not one class
