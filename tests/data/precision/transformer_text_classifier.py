# models: TextClassifier
import math
import torch
import torch.nn as nn

torch.manual_seed(0)
VOCAB_SIZE = 20000
EMBED_DIM = 128
NUM_HEADS = 4
NUM_LAYERS = 2
MAX_LEN = 256
NUM_CLASSES = 4
PAD_IDX = 0


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, max_len=5000):
        super().__init__()
        position = torch.arange(max_len).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(1, max_len, d_model)
        pe[0, :, 0::2] = torch.sin(position * div_term)
        pe[0, :, 1::2] = torch.cos(position * div_term)
        self.register_buffer('pe', pe)

    def forward(self, x):
        return x + self.pe[:, :x.size(1)]


class TextClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB_SIZE, EMBED_DIM, padding_idx=PAD_IDX)
        self.pos = PositionalEncoding(EMBED_DIM, MAX_LEN)
        layer = nn.TransformerEncoderLayer(EMBED_DIM, NUM_HEADS, dim_feedforward=256, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, NUM_LAYERS)
        self.fc = nn.Linear(EMBED_DIM, NUM_CLASSES)

    def forward(self, tokens):
        x = self.pos(self.embedding(tokens) * math.sqrt(EMBED_DIM))
        x = self.encoder(x)
        return self.fc(x.mean(dim=1))


train_iter = torch.load('ag_news_train.pt')
model = TextClassifier()
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4)
for epoch in range(5):
    for tokens, labels in train_iter:
        loss = criterion(model(tokens), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
