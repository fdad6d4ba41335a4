# models: LSTMForecaster
import numpy as np
import torch
import torch.nn as nn

torch.manual_seed(0)
np.random.seed(0)
WINDOW = 30
HORIZON = 1
N_FEATURES = 1
HIDDEN = 64

series = np.loadtxt("airline_passengers.csv", delimiter=",", skiprows=1, usecols=1)
series = (series - series.mean()) / series.std()
X = np.stack([series[i:i + WINDOW] for i in range(len(series) - WINDOW)])[..., None]
y = series[WINDOW:]


class LSTMForecaster(nn.Module):
    def __init__(self, n_features=N_FEATURES, hidden=HIDDEN, horizon=HORIZON):
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden, num_layers=2, batch_first=True, dropout=0.2)
        self.head = nn.Linear(hidden, horizon)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


model = LSTMForecaster()
criterion = nn.MSELoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
Xt = torch.tensor(X, dtype=torch.float32)
yt = torch.tensor(y, dtype=torch.float32).unsqueeze(1)
for epoch in range(200):
    loss = criterion(model(Xt), yt)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
torch.save(model.state_dict(), "forecaster.pt")
