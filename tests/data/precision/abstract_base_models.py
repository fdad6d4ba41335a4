# models: MLPClassifier, ConvClassifier
from abc import ABC, abstractmethod

import torch
import torch.nn as nn

torch.manual_seed(0)


class BaseModel(nn.Module, ABC):
    """Shared helpers; subclasses implement forward."""

    @abstractmethod
    def forward(self, x):
        ...

    def num_params(self):
        return sum(p.numel() for p in self.parameters())


class MLPClassifier(BaseModel):
    def __init__(self, in_dim=32, n_classes=5):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, 64), nn.ReLU(), nn.Linear(64, n_classes))

    def forward(self, x):
        return self.net(x)


class ConvClassifier(BaseModel):
    def __init__(self, n_classes=5):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(16, n_classes)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))


criterion = nn.CrossEntropyLoss()
for model in (MLPClassifier(), ConvClassifier()):
    print(type(model).__name__, model.num_params())
