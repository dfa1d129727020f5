"""How these fixtures were made, with the code before the trainer left the model (commit 74f22ec's parent):
model files with a training state after 2 epochs, and the weights after a 3rd epoch resumed from them (seed 7).
Run from the repository root with that code checked out; kept as the record of what the files hold."""

import torch

from natural_bm import DBM, RBM, SGD, Adam, load_model

HERE = "tests/data/legacy_training_state"
g = torch.Generator().manual_seed(0)
x = (torch.rand(64, 6, generator=g) < torch.linspace(0.2, 0.8, 6)).float()
cases = {
    "rbm_cd": (lambda: RBM(6, 4, seed=1),
               dict(optimizer=SGD(0.05, momentum=0.5), algorithm="cd", k=2, l2=1e-3)),
    "rbm_pcd_centred": (lambda: RBM(6, 4, seed=1),
                        dict(optimizer=SGD(0.05, momentum=0.9, nesterov=True), algorithm="pcd", k=1, n_chains=10,
                             centering=True, max_norm=2.0)),
    "rbm_pt": (lambda: RBM(6, 4, seed=1),
               dict(optimizer=Adam(0.01), algorithm="pt", k=1, n_chains=8, n_temperatures=3)),
    "dbm_mfpcd_sparse": (lambda: DBM([6, 4, 3], seed=1),
                         dict(optimizer=SGD(0.05, momentum=0.5), algorithm="mfpcd", k=2, n_chains=10, mf_steps=5,
                              sparsity={"target": 0.2, "cost": 0.01},
                              centering={"rate": 0.1, "target": "data"})),
}
out = {}
for name, (make, kw) in cases.items():
    m = make()
    m.compile(**kw)
    m.fit(x, batch_size=16, epochs=2, seed=7, verbose=0)
    m.save(f"{HERE}/{name}.pt")
    m2 = load_model(f"{HERE}/{name}.pt")
    m2.fit(x, batch_size=16, epochs=3, initial_epoch=2, seed=7, verbose=0)
    out[name] = {k: v.clone() for k, v in m2.parameter_dict().items()}
torch.save(out, f"{HERE}/expected_after_epoch2.pt")
