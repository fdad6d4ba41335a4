# nn002: CharRNN
import torch
import torch.nn as nn

torch.manual_seed(0)
with open('input.txt', 'r') as f:
    text = f.read()
chars = sorted(list(set(text)))
vocab_size = len(chars)
stoi = {ch: i for i, ch in enumerate(chars)}
data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
hidden_size = 256
seq_len = 100


class CharRNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, idx):
        h, _ = self.gru(self.embed(idx))
        return self.head(h)


model = CharRNN()
optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
criterion = nn.CrossEntropyLoss()
for step in range(5000):
    i = torch.randint(0, len(data) - seq_len - 1, (32,))
    x = torch.stack([data[j:j + seq_len] for j in i])
    y = torch.stack([data[j + 1:j + seq_len + 1] for j in i])
    logits = model(x)
    loss = criterion(logits.view(-1, vocab_size), y.view(-1))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
torch.save(model.state_dict(), 'char_rnn.pt')
