# models: SkipGram
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
VOCAB_SIZE = 5000
EMBED_DIM = 100
NEG_SAMPLES = 5


class SkipGram(nn.Module):
    def __init__(self, vocab_size=VOCAB_SIZE, dim=EMBED_DIM):
        super().__init__()
        self.in_embed = nn.Embedding(vocab_size, dim)
        self.out_embed = nn.Embedding(vocab_size, dim)

    def forward(self, center, context):
        v = self.in_embed(center)
        u = self.out_embed(context)
        return (v * u).sum(-1)


model = SkipGram()
optimizer = torch.optim.SparseAdam(list(model.parameters()), lr=1e-3)
pairs = torch.load("pairs.pt")
for center, context, label in pairs:
    score = model(center, context)
    loss = F.binary_cross_entropy_with_logits(score, label)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
torch.save(model.in_embed.weight.data, "embeddings.pt")
