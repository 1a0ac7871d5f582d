"""Latent matrices with known structure, shared by the metrics and regime-clustering tests."""

import numpy as np


def grouped_latents(sizes=(20, 25, 15), d=8, spread=0.08, seed=0):
    """Unit vectors in len(sizes) tight groups around orthogonal directions, interleaved in time."""
    rng = np.random.default_rng(seed)
    truth = np.concatenate([np.full(s, g) for g, s in enumerate(sizes)])
    truth = truth[rng.permutation(len(truth))]
    x = np.eye(d)[truth] + spread * rng.standard_normal((len(truth), d))
    return x / np.linalg.norm(x, axis=1, keepdims=True), truth
