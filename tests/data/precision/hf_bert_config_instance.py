# models: model
import torch
from transformers import BertConfig, BertForSequenceClassification

torch.manual_seed(0)
config = BertConfig(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=128, max_position_embeddings=128, num_labels=3)
model = BertForSequenceClassification(config)
optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
batches = torch.load("tokenized_batches.pt")
for epoch in range(3):
    for batch in batches:
        out = model(**batch)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
model.save_pretrained("./bert-finetuned")
