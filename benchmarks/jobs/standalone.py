"""The default dlrun job written by hand, as a careful person would: the baseline of whole_process.py.

MNIST-1D from dlrun's cache file (the same arrays), 10% validation by the seed,
standardised with training statistics, an MLP 40-512-512-10 with ReLU and
dropout 0.3, fused Adam at lr 1e-3, batches of 128 from a permutation, per
epoch the training loss (kept on the device) and the validation loss and
accuracy in one host sync, the best weights kept, the test split evaluated
with them at the end.

    python benchmarks/jobs/standalone.py --cache <mnist1d .npz> [--epochs 20]
"""

import argparse
import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

p = argparse.ArgumentParser()
p.add_argument("--cache", required=True)
p.add_argument("--epochs", type=int, default=20)
p.add_argument("--seed", type=int, default=0)
args = p.parse_args()

torch.manual_seed(args.seed)
with np.load(args.cache) as f:
    x, y, x_test, y_test = f["x"], f["y"], f["x_test"], f["y_test"]
order = np.random.default_rng(args.seed).permutation(len(y))
val, train = order[: round(0.1 * len(y))], order[round(0.1 * len(y)) :]
mean, std = x[train].mean(), x[train].std() + 1e-8
t = lambda a: torch.as_tensor(((a - mean) / std).astype(np.float32))  # noqa: E731
xt, yt, xv, yv = t(x[train]), torch.as_tensor(y[train]), t(x[val]), torch.as_tensor(y[val])
model = nn.Sequential(
    nn.Linear(40, 512), nn.ReLU(), nn.Dropout(0.3),
    nn.Linear(512, 512), nn.ReLU(), nn.Dropout(0.3), nn.Linear(512, 10),
)  # fmt: skip
opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
gen = torch.Generator().manual_seed(args.seed)
best, best_state = float("inf"), None
for _ in range(args.epochs):
    model.train()
    total = torch.zeros(())
    for idx in torch.randperm(len(yt), generator=gen).split(128):
        loss = F.cross_entropy(model(xt[idx]), yt[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach() * len(idx)
    model.eval()
    with torch.no_grad():
        out = model(xv)
        train_loss, val_loss, val_acc = torch.stack(
            [total / len(yt), F.cross_entropy(out, yv), (out.argmax(1) == yv).float().mean()]
        ).tolist()
    if val_loss < best:
        best, best_state = val_loss, copy.deepcopy(model.state_dict())
model.load_state_dict(best_state)
with torch.no_grad():
    test_acc = (model(t(x_test)).argmax(1) == torch.as_tensor(y_test)).float().mean().item()
print(f"best val loss {best:.4f}, test accuracy {test_acc:.3f}")
