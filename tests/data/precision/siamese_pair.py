# models: SiameseNetwork
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
EMBED_DIM = 64


class SiameseNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.cnn = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        )
        self.fc = nn.Linear(64, EMBED_DIM)

    def embed(self, x):
        return self.fc(torch.flatten(self.cnn(x), 1))

    def forward(self, x1, x2):
        return self.embed(x1), self.embed(x2)


class ContrastiveLoss(nn.Module):
    def __init__(self, margin=2.0):
        super().__init__()
        self.margin = margin

    def forward(self, out1, out2, label):
        d = F.pairwise_distance(out1, out2)
        return torch.mean((1 - label) * d.pow(2) + label * torch.clamp(self.margin - d, min=0.0).pow(2))


net = SiameseNetwork()
criterion = ContrastiveLoss()
optimizer = torch.optim.Adam(net.parameters(), lr=5e-4)
pairs = torch.load("pairs.pt")
for epoch in range(20):
    for img0, img1, label in pairs:
        out1, out2 = net(img0, img1)
        loss = criterion(out1, out2, label)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
