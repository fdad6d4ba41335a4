# either: TabularNet  (categorical indices per embedding: checked when the guessed inputs fit, else NN002)
from dataclasses import dataclass, field

import torch
import torch.nn as nn


@dataclass
class Config:
    n_numeric: int = 8
    cardinalities: list = field(default_factory=lambda: [10, 5, 7])
    emb_dim: int = 4
    hidden: int = 128
    n_classes: int = 2
    dropout: float = 0.2


class TabularNet(nn.Module):
    def __init__(self, config: Config):
        super().__init__()
        self.embs = nn.ModuleList([nn.Embedding(c, config.emb_dim) for c in config.cardinalities])
        width = config.n_numeric + config.emb_dim * len(config.cardinalities)
        self.mlp = nn.Sequential(
            nn.Linear(width, config.hidden), nn.ReLU(), nn.Dropout(config.dropout),
            nn.Linear(config.hidden, config.n_classes),
        )

    def forward(self, numeric, categorical):
        embs = [emb(categorical[:, i]) for i, emb in enumerate(self.embs)]
        return self.mlp(torch.cat([numeric, *embs], dim=1))


cfg = Config()
torch.manual_seed(0)
model = TabularNet(cfg)
train = torch.load("train_tensors.pt")
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = nn.CrossEntropyLoss()
for epoch in range(30):
    for numeric, categorical, target in train:
        loss = loss_fn(model(numeric, categorical), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
