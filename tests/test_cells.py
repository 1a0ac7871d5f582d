"""Spherical k-means and the faiss cell index: unit centroids that separate clear directions, nearest cells equal
to a brute-force argmax, a fixed index that puts every row in exactly one cell (its nearest), in slot order, K-NN
lists equal to the exact ones when every cell is probed, a removable index that follows rewritten slots, and faiss
next to torch in one process."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from chronoslib.cells import IVFIndex, ivf_knn_lists, nearest_cells, spherical_kmeans
from chronoslib.synthetic import regime_latents
from chronoslib.timeline import knn_lists


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
    ix = IVFIndex.train(z, 20, seed=0, removable=False)
    seen = np.concatenate([ix.slots_of(c) for c in range(ix.n_cells)])
    assert np.array_equal(np.sort(seen), np.arange(3000)) and int(ix.sizes.sum()) == 3000
    np.testing.assert_allclose(ix.centroids.norm(dim=1).numpy(), 1.0, atol=1e-5)    # spherical k-means
    lab = ix.cells_of(3000)
    for c in range(ix.n_cells):
        s = ix.slots_of(c)
        assert (np.diff(s) > 0).all() and (lab[s] == c).all()                       # added in slot order
        assert torch.equal(ix.latents_of(c), z[torch.from_numpy(s)])
    assert (lab == nearest_cells(z, ix.centroids)).mean() > 0.999                   # float32 near-ties only
    assert np.array_equal(ix.assign(z), lab)


def test_ivf_knn_lists_are_the_exact_lists_when_every_cell_is_probed_and_close_otherwise():
    z = torch.from_numpy(regime_latents(4000, dim=16, seed=4))
    ref = knn_lists(z, 8)[0]
    got, ix = ivf_knn_lists(z, 8, 30, 30)                                           # every cell probed
    assert got.shape == (4000, 8) and not (got == np.arange(4000)[:, None]).any()   # nobody is its own neighbour
    assert np.mean([len(set(a) & set(b)) / 8 for a, b in zip(got, ref)]) > 0.999
    few, _ = ivf_knn_lists(z, 8, 30, 3)
    recall = np.mean([len(set(a) & set(b)) / 8 for a, b in zip(few, ref)])
    assert 0.8 < recall < 1.0                                                       # approximate, yet close
    tiny, _ = ivf_knn_lists(z[:40], 8, 20, 1)                                       # ~2 rows a cell: -1 pads
    assert (tiny == -1).any() and ((tiny >= 0) | (tiny == -1)).all()


def test_a_removable_index_moves_rewritten_slots_and_searches_like_brute_force_over_its_cells():
    z = torch.from_numpy(regime_latents(2000, dim=16, seed=6))
    ix = IVFIndex.train(z, 10)
    new = torch.from_numpy(regime_latents(50, dim=16, seed=7))
    ix.update(np.arange(100, 150), new)
    zz = z.clone()
    zz[100:150] = new
    assert ix.rows_since_train == 50 and int(ix.sizes.sum()) == 2000
    lab = ix.cells_of(2000)
    assert np.array_equal(lab[100:150], ix.assign(new))
    q = zz[[3, 120, 1999]]
    cos, ids = ix.search(q, 5, 10)                                                  # all cells: exact top-5
    ref = torch.topk(q @ zz.T, 5, dim=1)
    assert torch.equal(ids, ref.indices)
    torch.testing.assert_close(cos, ref.values)
    cos1, ids1 = ix.search(q, 5, 1)                                                 # one cell: only its members
    for i in range(3):
        assert set(lab[ids1[i].numpy()]) == {int(ix.assign(q[i:i + 1])[0])}


_CLASH = """
import numpy as np, torch
x = torch.randn(300, 64, generator=torch.Generator().manual_seed(0))
{first}
lin = torch.nn.Linear(64, 8)
loss = lin(x).pow(2).sum()
loss.backward()
torch.set_num_threads(2)
y = (x @ x.T).numpy()
assert np.allclose(y, x.numpy().astype(np.float64) @ x.numpy().T.astype(np.float64), atol=1e-3)
from chronoslib.cells import ivf_knn_lists
z = torch.nn.functional.normalize(x, dim=1)
lists, _ = ivf_knn_lists(z, 4, 4, 4)
ref = torch.topk(z @ z.T - 10 * torch.eye(300), 4, dim=1).indices.numpy()
assert (lists == ref).mean() > 0.99
assert torch.allclose(lin(x).pow(2).sum(), loss) and lin.weight.grad is not None
print("ok")
"""


@pytest.mark.parametrize("first", ["import faiss", "torch.ones(2) @ torch.ones(2)"])
def test_faiss_and_torch_work_in_one_process_whichever_loads_first(first):
    # faiss and torch each bring an OpenMP runtime; a clash shows as a crash, a hang or wrong numbers.
    r = subprocess.run([sys.executable, "-c", _CLASH.format(first=first)], capture_output=True, text=True,
                       timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_regime_clusters_find_the_number_of_separated_regimes_and_label_every_row():
    from chronoslib.cells import regime_clusters
    from chronoslib.metrics import agreement

    z, lab = regime_latents(5000, seed=2, return_labels=True)        # more rows than the 2,000-row sample
    got = regime_clusters(torch.from_numpy(z))
    assert got.shape == (5000,) and len(np.unique(got)) == len(np.unique(lab))
    assert agreement(got, lab)["ari"] > 0.95
    assert regime_clusters(torch.from_numpy(z[:1])).tolist() == [0]
