import torch
import torch.nn as nn
import torch.nn.functional as F


class DQN(nn.Module):
    def __init__(self, in_channels=4, n_actions=6):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, kernel_size=8, stride=4)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=4, stride=2)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3, stride=1)
        self.fc4 = nn.Linear(7 * 7 * 64, 512)
        self.head = nn.Linear(512, n_actions)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.relu(self.conv3(x))
        x = F.relu(self.fc4(x.reshape(-1, 7 * 7 * 64)))
        return self.head(x)


policy_net = DQN()
target_net = DQN()


def optimize(state, action, reward, next_state, gamma=0.99):
    q = policy_net(state).gather(1, action)
    next_q = target_net(next_state).max(1)[0].detach()
    expected = reward + gamma * next_q
    loss = F.smooth_l1_loss(q, expected.unsqueeze(1))
    return loss
