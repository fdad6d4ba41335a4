# models: make_mlp
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)


def make_mlp(in_dim=20, hidden=64, out_dim=3, p=0.1):
    return nn.Sequential(
        nn.Linear(in_dim, hidden),
        nn.ReLU(),
        nn.Dropout(p),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, out_dim),
    )


X = torch.load("features.pt")
y = torch.load("labels.pt")
loader = DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True)
net = make_mlp(in_dim=X.shape[1])
loss_fn = nn.CrossEntropyLoss()
opt = torch.optim.SGD(net.parameters(), lr=0.1)
for epoch in range(10):
    for xb, yb in loader:
        loss = loss_fn(net(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
torch.save(net, "mlp.pt")
