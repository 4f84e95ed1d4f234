"""int8 export of the composition network and a numpy forward pass for on-board inference.

Weights are quantized per output channel (symmetric int8, float32 scale); biases and the input
normalization stay float32. The on-board runtime needs only numpy, no torch.

A wide & deep model (``ArchitectureConfig.wide``) also carries ``wide.weight_q``/``wide.scale`` (no bias): its
class logits add the wide layer applied to the normalized inputs, as ``CompositionNet.forward`` does. A
package without them is a deep-only model and is run as before.
"""

from __future__ import annotations

import io

import numpy as np
import torch

from astromined.ml.model import CompositionNet

LAYERS = ("body.0", "body.3", "class_head", "metal_head", "wide")  # every layer a model may have


def layers_of(arrays_or_state) -> tuple[str, ...]:
    """The LAYERS present in package arrays (``<layer>.weight_q``) or a state_dict (``<layer>.weight``)."""
    return tuple(
        layer
        for layer in LAYERS
        if f"{layer}.weight_q" in arrays_or_state or f"{layer}.weight" in arrays_or_state
    )


def quantize(model: CompositionNet) -> dict[str, np.ndarray]:
    state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    arrays: dict[str, np.ndarray] = {
        "feature_mean": state["feature_mean"].astype(np.float32),
        "feature_std": state["feature_std"].astype(np.float32),
    }
    for layer in layers_of(state):
        weight = state[f"{layer}.weight"].astype(np.float32)
        scale = np.maximum(np.abs(weight).max(axis=1), 1e-12) / 127.0
        arrays[f"{layer}.weight_q"] = np.clip(np.round(weight / scale[:, None]), -127, 127).astype(np.int8)
        arrays[f"{layer}.scale"] = scale.astype(np.float32)
        if f"{layer}.bias" in state:  # the wide layer has none
            arrays[f"{layer}.bias"] = state[f"{layer}.bias"].astype(np.float32)
    return arrays


def _linear(arrays: dict[str, np.ndarray], layer: str, x: np.ndarray) -> np.ndarray:
    weight = arrays[f"{layer}.weight_q"].astype(np.float32) * arrays[f"{layer}.scale"][:, None]
    out = x @ weight.T
    bias = arrays.get(f"{layer}.bias")
    return out if bias is None else out + bias


def normalize(arrays: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The package's input normalization of model inputs (``engineering.model_inputs``), on board."""
    return (np.asarray(x, np.float32) - arrays["feature_mean"]) / arrays["feature_std"]


def int8_forward(arrays: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities and metal richness, as the satellites compute them."""
    z = normalize(arrays, x)
    h = np.maximum(_linear(arrays, "body.0", z), 0.0)
    h = np.maximum(_linear(arrays, "body.3", h), 0.0)
    logits = _linear(arrays, "class_head", h)
    if "wide.weight_q" in arrays:  # wide & deep: plus a linear map of the normalized inputs
        logits = logits + _linear(arrays, "wide", z)
    logits -= logits.max(axis=1, keepdims=True)
    probabilities = np.exp(logits)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    metal = 1.0 / (1.0 + np.exp(-_linear(arrays, "metal_head", h)[:, 0]))
    return probabilities, metal


def to_npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def from_npz_bytes(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as loaded:
        return {k: loaded[k] for k in loaded.files}


@torch.no_grad()
def parity(model: CompositionNet, arrays: dict[str, np.ndarray], x: np.ndarray) -> dict[str, float]:
    """How closely the int8 export reproduces the float model on the given inputs."""
    model = model.cpu().eval()
    logits, metal = model(torch.as_tensor(x, dtype=torch.float32))
    probabilities = torch.softmax(logits, dim=-1).numpy()
    q_probabilities, q_metal = int8_forward(arrays, x)
    return {
        "top1_agreement": float(np.mean(probabilities.argmax(1) == q_probabilities.argmax(1)))
        if len(x)
        else 1.0,
        "max_probability_error": float(np.abs(probabilities - q_probabilities).max()) if len(x) else 0.0,
        "max_metal_error": float(np.abs(metal.numpy() - q_metal).max()) if len(x) else 0.0,
    }
