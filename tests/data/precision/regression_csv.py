# nn002: Regressor
import numpy as np
import torch
import torch.nn as nn

torch.manual_seed(0)
table = np.genfromtxt("housing.csv", delimiter=",", skip_header=1)
X = torch.tensor(table[:, :-1], dtype=torch.float32)
y = torch.tensor(table[:, -1], dtype=torch.float32).unsqueeze(1)
n_features = X.shape[1]


class Regressor(nn.Module):
    def __init__(self, n_in, hidden=64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x):
        return self.net(x)


model = Regressor(n_features)
loss_fn = nn.MSELoss()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(100):
    pred = model(X)
    loss = loss_fn(pred, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
np.save("predictions.npy", model(X).detach().numpy())
