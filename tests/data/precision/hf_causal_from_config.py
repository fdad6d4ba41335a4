# models: model
import torch
from transformers import AutoConfig, AutoModelForCausalLM, GPT2Config

torch.manual_seed(0)
cfg = GPT2Config(vocab_size=512, n_positions=64, n_embd=64, n_layer=2, n_head=4)
model = AutoModelForCausalLM.from_config(cfg)
data = torch.load("tokens.pt")
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
for step in range(1000):
    idx = torch.randint(0, data.size(0) - 65, (8,))
    x = torch.stack([data[i:i + 64] for i in idx])
    loss = model(input_ids=x, labels=x).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
model.save_pretrained("tiny-gpt2")
