"""Spherical k-means and the cell index: unit centroids that separate clear directions, nearest cells equal to a
brute-force argmax, and a fixed index that puts every row in exactly one cell (its nearest), in slot order."""

import numpy as np
import torch

from chronoslib.cells import CellIndex, nearest_cells, spherical_kmeans
from chronoslib.synthetic import regime_latents


def test_spherical_kmeans_separates_well_separated_directions():
    z = regime_latents(4000, dim=16, n_regimes=3, spread=0.05, seed=0)
    cent, lab = spherical_kmeans(torch.from_numpy(z), 3, seed=0)
    assert cent.shape == (3, 16) and lab.shape == (4000,)
    np.testing.assert_allclose(cent.norm(dim=1).numpy(), 1.0, atol=1e-5)
    sims = (torch.from_numpy(z) @ cent.T).max(dim=1).values
    assert float(sims.mean()) > 0.8


def test_nearest_cells_equal_a_brute_force_argmax_across_chunks():
    z = torch.nn.functional.normalize(torch.randn(5000, 8, generator=torch.Generator().manual_seed(0)), dim=1)
    cent = torch.nn.functional.normalize(torch.randn(3000, 8, generator=torch.Generator().manual_seed(1)), dim=1)
    ref = np.argmax(z.double().numpy() @ cent.double().numpy().T, axis=1)   # 3000 cells: several row chunks
    got = nearest_cells(z, cent)
    assert got.dtype == np.int64 and (got == ref).mean() > 0.999             # float32 vs float64 near-ties only


def test_a_fixed_index_holds_every_row_once_in_its_nearest_cell():
    z = torch.from_numpy(regime_latents(3000, dim=16, seed=2))
    ix = CellIndex.fixed(z, 20, seed=0)
    seen = np.concatenate([ix.slots_of(c) for c in range(ix.n_cells)])
    assert np.array_equal(np.sort(seen), np.arange(3000)) and int(ix.sizes.sum()) == 3000
    for c in range(ix.n_cells):
        s = ix.slots_of(c)
        assert (np.diff(s) > 0).all() and (ix.cell[s] == c).all()
        assert torch.equal(ix.latents_of(c), z[torch.from_numpy(s)])
    assert np.array_equal(ix.cell, nearest_cells(z, ix.centroids))
    assert all(ix.members[c].shape[0] == ix.sizes[c] for c in range(ix.n_cells))   # no spare room


def test_regime_clusters_find_the_number_of_separated_regimes_and_label_every_row():
    from chronoslib.cells import regime_clusters
    from chronoslib.metrics import agreement

    z, lab = regime_latents(5000, seed=2, return_labels=True)        # more rows than the 2,000-row sample
    got = regime_clusters(torch.from_numpy(z))
    assert got.shape == (5000,) and len(np.unique(got)) == len(np.unique(lab))
    assert agreement(got, lab)["ari"] > 0.95
    assert regime_clusters(torch.from_numpy(z[:1])).tolist() == [0]
