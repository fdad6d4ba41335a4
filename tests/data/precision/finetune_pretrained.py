# nn002: model
import torch
import torch.nn as nn
from torchvision import datasets, models, transforms

torch.manual_seed(0)
data_transforms = transforms.Compose([transforms.RandomResizedCrop(224), transforms.ToTensor()])
image_datasets = datasets.ImageFolder('data/hymenoptera_data/train', data_transforms)
dataloader = torch.utils.data.DataLoader(image_datasets, batch_size=4, shuffle=True)

model = models.resnet18(pretrained=True)
num_ftrs = model.fc.in_features
model.fc = nn.Linear(num_ftrs, 2)
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
for epoch in range(25):
    for inputs, labels in dataloader:
        optimizer.zero_grad()
        loss = criterion(model(inputs), labels)
        loss.backward()
        optimizer.step()
torch.save(model.state_dict(), 'finetuned.pth')
