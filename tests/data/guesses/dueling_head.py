import torch
import torch.nn as nn


class DuelingQNet(nn.Module):
    def __init__(self, state_dim=8, n_actions=4, hidden=128):
        super().__init__()
        self.feature = nn.Sequential(nn.Linear(state_dim, hidden), nn.ReLU())
        self.value = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.advantage = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, n_actions))

    def forward(self, x):
        h = self.feature(x)
        v = self.value(h)
        a = self.advantage(h)
        return v + a - a.mean(dim=1, keepdim=True)


net = DuelingQNet()
loss_fn = nn.MSELoss()


def train_step(opt, s, a, target):
    q = net(s).gather(1, a.unsqueeze(1)).squeeze(1)
    loss = loss_fn(q, target)
    opt.zero_grad()
    loss.backward()
    opt.step()
