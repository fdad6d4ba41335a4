import torch
import torch.nn as nn

latent_dim = 64
image_size = 784


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 256), nn.ReLU(),
            nn.Linear(256, image_size), nn.Tanh())

    def forward(self, z):
        return self.net(z)


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(image_size, 256), nn.LeakyReLU(0.2),
            nn.Linear(256, 1), nn.Sigmoid())

    def forward(self, x):
        return self.net(x)


G = Generator()
D = Discriminator()
criterion = nn.BCELoss()


def train_step(real, opt_g, opt_d):
    z = torch.randn(real.size(0), latent_dim)
    fake = G(z)
    d_loss = criterion(D(real), torch.ones(real.size(0), 1)) + criterion(D(fake.detach()), torch.zeros(real.size(0), 1))
    opt_d.zero_grad(); d_loss.backward(); opt_d.step()
    g_loss = criterion(D(fake), torch.ones(real.size(0), 1))
    opt_g.zero_grad(); g_loss.backward(); opt_g.step()
