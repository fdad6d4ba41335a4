# models: GeneratorUNet
# either: Discriminator  (two image inputs: checked when the guessed inputs fit, else NN002)
import argparse
import os

import torch
import torch.nn as nn

parser = argparse.ArgumentParser()
parser.add_argument("--n_epochs", type=int, default=200)
parser.add_argument("--img_height", type=int, default=64)
parser.add_argument("--img_width", type=int, default=64)
parser.add_argument("--channels", type=int, default=3)
opt = parser.parse_args()
os.makedirs("saved_models", exist_ok=True)
torch.manual_seed(0)
lambda_pixel = 100
patch = (1, opt.img_height // 2 ** 3, opt.img_width // 2 ** 3)


class UNetDown(nn.Module):
    def __init__(self, in_size, out_size, normalize=True):
        super(UNetDown, self).__init__()
        layers = [nn.Conv2d(in_size, out_size, 4, 2, 1, bias=False)]
        if normalize:
            layers.append(nn.InstanceNorm2d(out_size))
        layers.append(nn.LeakyReLU(0.2))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class UNetUp(nn.Module):
    def __init__(self, in_size, out_size):
        super(UNetUp, self).__init__()
        self.model = nn.Sequential(
            nn.ConvTranspose2d(in_size, out_size, 4, 2, 1, bias=False), nn.InstanceNorm2d(out_size), nn.ReLU(inplace=True))

    def forward(self, x, skip_input):
        x = self.model(x)
        return torch.cat((x, skip_input), 1)


class GeneratorUNet(nn.Module):
    def __init__(self, in_channels=3, out_channels=3):
        super(GeneratorUNet, self).__init__()
        self.down1 = UNetDown(in_channels, 32, normalize=False)
        self.down2 = UNetDown(32, 64)
        self.down3 = UNetDown(64, 128)
        self.up1 = UNetUp(128, 64)
        self.up2 = UNetUp(128, 32)
        self.final = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(64, out_channels, 3, padding=1), nn.Tanh())

    def forward(self, x):
        d1 = self.down1(x)
        d2 = self.down2(d1)
        d3 = self.down3(d2)
        u1 = self.up1(d3, d2)
        u2 = self.up2(u1, d1)
        return self.final(u2)


class Discriminator(nn.Module):
    def __init__(self, in_channels=3):
        super(Discriminator, self).__init__()

        def discriminator_block(in_filters, out_filters, normalization=True):
            layers = [nn.Conv2d(in_filters, out_filters, 4, stride=2, padding=1)]
            if normalization:
                layers.append(nn.InstanceNorm2d(out_filters))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            return layers

        self.model = nn.Sequential(
            *discriminator_block(in_channels * 2, 32, normalization=False),
            *discriminator_block(32, 64),
            *discriminator_block(64, 128),
            nn.Conv2d(128, 1, 3, padding=1),
        )

    def forward(self, img_A, img_B):
        return self.model(torch.cat((img_A, img_B), 1))


criterion_GAN = torch.nn.MSELoss()
criterion_pixelwise = torch.nn.L1Loss()
generator = GeneratorUNet()
discriminator = Discriminator()
optimizer_G = torch.optim.Adam(generator.parameters(), lr=0.0002, betas=(0.5, 0.999))
optimizer_D = torch.optim.Adam(discriminator.parameters(), lr=0.0002, betas=(0.5, 0.999))
dataloader = torch.load("facades.pt")
for epoch in range(opt.n_epochs):
    for i, batch in enumerate(dataloader):
        real_A, real_B = batch["B"], batch["A"]
        valid = torch.ones((real_A.size(0), *patch))
        fake_B = generator(real_A)
        loss_GAN = criterion_GAN(discriminator(fake_B, real_A), valid)
        loss_pixel = criterion_pixelwise(fake_B, real_B)
        loss_G = loss_GAN + lambda_pixel * loss_pixel
        optimizer_G.zero_grad()
        loss_G.backward()
        optimizer_G.step()
    torch.save(generator.state_dict(), "saved_models/generator_%d.pth" % epoch)
