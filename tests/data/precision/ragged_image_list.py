# models: ListViT
# forward takes ONE argument, a list of images of different sizes (NaViT-style), and runs
# its transformer on a nested (jagged) tensor: a list input must reach forward as one list.
import torch
import torch.nn as nn

torch.manual_seed(0)


class ListViT(nn.Module):
    def __init__(self, patch=8, dim=32, num_classes=10):
        super().__init__()
        self.patch = patch
        self.embed = nn.Linear(3 * patch * patch, dim)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def tokens(self, image):
        c, p = image.shape[0], self.patch
        x = image.unfold(1, p, p).unfold(2, p, p)  # c, h, w, p, p
        return x.permute(1, 2, 0, 3, 4).reshape(-1, c * p * p)

    def forward(self, images):
        seqs = [self.embed(self.tokens(img)) for img in images]
        x = torch.nested.as_nested_tensor(seqs, layout=torch.jagged)
        x = self.norm(x.relu())
        pooled = torch.stack([s.mean(dim=0) for s in x.unbind()])
        return self.head(pooled)


model = ListViT()
images = [torch.randn(3, 32, 32), torch.randn(3, 16, 32), torch.randn(3, 32, 16), torch.randn(3, 16, 16)]
labels = torch.randint(0, 10, (4,))
loss = nn.functional.cross_entropy(model(images), labels)
loss.backward()
