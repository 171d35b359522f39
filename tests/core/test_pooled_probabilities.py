"""A patch's probabilities are its pixels' pooled in the logs: they follow
a change of the model's temperature as each pixel's do."""

import numpy as np
import torch

from fixer_core.finder import _pooled_probs


def _at_temperature(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    return torch.softmax(probs.log() / temperature, dim=1)


def test_a_patch_follows_the_models_temperature_as_a_pixel_does():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 6, 7, generator=generator)  # above the floor
    probs = torch.softmax(logits, dim=1)
    ids = [np.full((6, 7), -1, dtype=np.int32) for _ in range(2)]
    ids[0][1:4, 2:6] = 0
    ids[1][:, :3] = 1
    ids[1][4:, 3:] = 0
    pooled = _pooled_probs(probs, ids)
    for temperature in (0.5, 2.0):
        scaled = _pooled_probs(_at_temperature(probs, temperature), ids)
        want = _at_temperature(torch.as_tensor(pooled), temperature)
        np.testing.assert_allclose(scaled, want.numpy(), atol=1e-5)


def test_a_patch_is_its_pixels_normalised_geometric_mean():
    # 3 pixels rule the label (class 0) out, 1 is sure of it
    probs = torch.tensor([[0.01, 0.01, 0.01, 0.97], [0.99, 0.99, 0.99, 0.03]])
    probs = probs.view(1, 2, 1, 4)
    pooled = _pooled_probs(probs, [np.zeros((1, 4), dtype=np.int32)])[0]
    geometric = np.array([0.01**0.75 * 0.97**0.25, 0.99**0.75 * 0.03**0.25])
    np.testing.assert_allclose(pooled, geometric / geometric.sum(), rtol=1e-5)
    # an arithmetic mean would keep the label at 0.25
    assert pooled[0] < 0.1
