# Solution to hands-on activity 2: implement SpamDataset, create the three loaders, inspect a batch
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset


class MySpamDataset(Dataset):
    def __init__(self, csv_file, tokenizer, max_length=None, pad_token_id=50256):
        self.data = pd.read_csv(csv_file)
        self.tokenizer, self.pad_token_id = tokenizer, pad_token_id
        if max_length is None:  # the longest message, in tokens
            self.max_length = max(len(tokenizer.encode(text)) for text in self.data["Text"])
        else:
            self.max_length = max_length

    def __getitem__(self, index):
        text = self.data.iloc[index]["Text"]
        label = self.data.iloc[index]["Label"]
        token_ids = self.tokenizer.encode(text)[:self.max_length]                  # tokenize, truncate...
        token_ids += [self.pad_token_id] * (self.max_length - len(token_ids))     # ...then pad on the right
        return torch.tensor(token_ids, dtype=torch.long), torch.tensor(label, dtype=torch.long)

    def __len__(self):
        return len(self.data)


my_train_dataset = MySpamDataset(paths["train"], tokenizer)
my_val_dataset = MySpamDataset(paths["validation"], tokenizer, max_length=my_train_dataset.max_length)
my_test_dataset = MySpamDataset(paths["test"], tokenizer, max_length=my_train_dataset.max_length)
my_train_loader = DataLoader(my_train_dataset, batch_size=8, shuffle=True, drop_last=True)
my_val_loader = DataLoader(my_val_dataset, batch_size=8)
my_test_loader = DataLoader(my_test_dataset, batch_size=8)
first_inputs, first_labels = next(iter(my_train_loader))
n_padding = int((first_inputs[0] == 50256).sum())

print(tokenizer.decode(first_inputs[0].tolist()))
print(f"{n_padding} padding tokens after {my_train_dataset.max_length - n_padding} real ones")
print(f"{len(my_train_loader)} / {len(my_val_loader)} / {len(my_test_loader)} batches")
