import torch
import torch.nn as nn

sequence_length = 28
input_size = 28
hidden_size = 128
num_layers = 2
num_classes = 10


class RNN(nn.Module):
    def __init__(self, input_size=28, hidden_size=128, num_layers=2, num_classes=10):
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_size * sequence_length, num_classes)

    def forward(self, x):
        out, _ = self.lstm(x)
        out = out.reshape(out.size(0), -1)
        return self.fc(out)


model = RNN(input_size, hidden_size, num_layers, num_classes)
criterion = nn.CrossEntropyLoss()
