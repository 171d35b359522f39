"""The dense argmax over the class channels: the CPU's running scan gives
exactly what torch's max over the channels gives (the path accelerators
take), and ``channel_argmax`` what NumPy's argmax gives."""

import numpy as np
import pytest
import torch

from fixer_core._argmax import _channel_max, _dense_max, channel_argmax


def _probs(n, k, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(n, k, 12, 17, generator=gen) * 2).softmax(dim=1)


@pytest.mark.parametrize("k", [2, 11, 150])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("with_cutoff", [False, True])
@pytest.mark.parametrize("threads", [1, 2])
def test_running_scan_matches_torch_max(k, weighted, with_cutoff, threads):
    probs = _probs(5, k)
    gen = torch.Generator().manual_seed(1)
    weights = torch.rand(k, generator=gen) * 8 + 0.5 if weighted else None
    cutoff = torch.rand(k, generator=gen) * 3 / k if with_cutoff else None
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        p_max, argmax = _dense_max(probs, weights, cutoff)
    finally:
        torch.set_num_threads(before)
    expected_p, expected_k = _channel_max(probs, weights, cutoff)
    assert argmax.dtype == torch.long
    assert torch.equal(argmax, expected_k)
    assert torch.equal(p_max, expected_p)


def test_ties_go_to_the_first_class():
    probs = torch.full((1, 4, 3, 3), 0.25)
    _, argmax = _dense_max(probs, None)
    assert (argmax == 0).all()
    # weighted, classes 1 and 3 tie above the others
    _, argmax = _dense_max(probs, torch.tensor([1.0, 2.0, 1.5, 2.0]))
    assert (argmax == 1).all()
    # no class reaches its cutoff: every class scores alike
    cutoff = torch.full((4,), 0.5)
    _, argmax = _dense_max(probs, torch.tensor([1.0, 2.0, 1.5, 2.0]), cutoff)
    assert (argmax == 0).all()


@pytest.mark.parametrize("k", [1, 2, 11, 300])
def test_channel_argmax_is_numpys_with_ties(k):
    probs = _probs(3, k)
    probs[:, :, :4] = 1 / k  # all classes tie
    probs[:, -1, 4:6] = probs[:, 0, 4:6]  # the first and last tie
    probs[1, :, 6:] = 0.0
    probs[1, k // 2, 6:] = -0.0
    expected = probs.numpy().argmax(axis=1)
    for layout in (probs, probs[:, :, ::3, ::2]):
        argmax = channel_argmax(layout)
        assert argmax.dtype == expected.dtype
        assert np.array_equal(argmax, layout.numpy().argmax(axis=1))
