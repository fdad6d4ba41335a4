# models: mobilenet_tiny
import torch
import torch.nn as nn


def conv_bn(inp, oup, stride):
    return nn.Sequential(nn.Conv2d(inp, oup, 3, stride, 1, bias=False), nn.BatchNorm2d(oup), nn.ReLU6(inplace=True))


def conv_dw(inp, oup, stride):
    return nn.Sequential(
        nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False), nn.BatchNorm2d(inp), nn.ReLU6(inplace=True),
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup), nn.ReLU6(inplace=True),
    )


def mobilenet_tiny(num_classes=10):
    return nn.Sequential(
        conv_bn(3, 16, 2),
        conv_dw(16, 32, 1),
        conv_dw(32, 64, 2),
        conv_dw(64, 64, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, num_classes),
    )


if __name__ == "__main__":
    net = mobilenet_tiny()
    print(net(torch.randn(2, 3, 32, 32)).shape)
