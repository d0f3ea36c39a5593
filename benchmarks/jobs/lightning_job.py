"""The default dlrun job with Lightning's Trainer: the other baseline of whole_process.py.

The same data, model, optimizer (fused Adam), batch size and epochs as
standalone.py, written the way Lightning's documentation shows: a
LightningModule, DataLoaders over TensorDatasets, a Trainer with a CSV logger
and a checkpoint of the best and last weights (dlrun writes both too),
validation every epoch, a test at the end with the best weights. Progress bar
and model summary off, as for dlrun in a non-terminal. Lightning is installed
for this benchmark only (`pip install lightning`); it is no dependency of dlrun.

    python benchmarks/jobs/lightning_job.py --cache <mnist1d .npz> [--epochs 20] --out DIR
"""

import argparse
import warnings

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

warnings.filterwarnings("ignore")  # num_workers advice, on every run
p = argparse.ArgumentParser()
p.add_argument("--cache", required=True)
p.add_argument("--epochs", type=int, default=20)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--out", required=True)
args = p.parse_args()

L.seed_everything(args.seed, verbose=False)
with np.load(args.cache) as f:
    x, y, x_test, y_test = f["x"], f["y"], f["x_test"], f["y_test"]
order = np.random.default_rng(args.seed).permutation(len(y))
val, train = order[: round(0.1 * len(y))], order[round(0.1 * len(y)) :]
mean, std = x[train].mean(), x[train].std() + 1e-8


def loader(a, b, shuffle=False):
    xs = torch.as_tensor(((a - mean) / std).astype(np.float32))
    return DataLoader(TensorDataset(xs, torch.as_tensor(b)), batch_size=128, shuffle=shuffle)


class MLP(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(40, 512), nn.ReLU(), nn.Dropout(0.3),
            nn.Linear(512, 512), nn.ReLU(), nn.Dropout(0.3), nn.Linear(512, 10),
        )  # fmt: skip

    def training_step(self, batch, _):
        loss = F.cross_entropy(self.net(batch[0]), batch[1])
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, _):
        out = self.net(batch[0])
        self.log("val_loss", F.cross_entropy(out, batch[1]))
        self.log("val_acc", (out.argmax(1) == batch[1]).float().mean())

    def test_step(self, batch, _):
        self.log("test_acc", (self.net(batch[0]).argmax(1) == batch[1]).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3, fused=True)


checkpoint = ModelCheckpoint(dirpath=args.out, monitor="val_loss", save_last=True)
trainer = L.Trainer(
    max_epochs=args.epochs,
    accelerator="cpu",
    devices=1,
    logger=CSVLogger(args.out),
    callbacks=[checkpoint],
    enable_progress_bar=False,
    enable_model_summary=False,
)
model = MLP()
trainer.fit(model, loader(x[train], y[train], shuffle=True), loader(x[val], y[val]))
trainer.test(model, loader(x_test, y_test), ckpt_path="best", verbose=False)
