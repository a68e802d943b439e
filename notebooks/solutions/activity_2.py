# Solution to hands-on activity 2: implement SpamDataset, create the loaders, inspect a batch
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset


class MySpamDataset(Dataset):
    def __init__(self, csv_file, tokenizer, max_length=None, pad_token_id=50256):
        self.data = pd.read_csv(csv_file)
        self.encoded_texts = [tokenizer.encode(text) for text in self.data["Text"]]
        if max_length is None:
            self.max_length = max(len(ids) for ids in self.encoded_texts)
        else:
            self.max_length = max_length
            self.encoded_texts = [ids[:max_length] for ids in self.encoded_texts]  # truncate first...
        self.encoded_texts = [ids + [pad_token_id] * (self.max_length - len(ids))  # ...then pad on the right
                              for ids in self.encoded_texts]

    def __getitem__(self, index):
        label = self.data.iloc[index]["Label"]
        return torch.tensor(self.encoded_texts[index], dtype=torch.long), torch.tensor(label, dtype=torch.long)

    def __len__(self):
        return len(self.data)


my_train_dataset = MySpamDataset(paths["train"], tokenizer)
my_val_dataset = MySpamDataset(paths["validation"], tokenizer, max_length=my_train_dataset.max_length)
my_train_loader = DataLoader(my_train_dataset, batch_size=8, shuffle=True, drop_last=True)
first_inputs, first_labels = next(iter(my_train_loader))
n_padding = int((first_inputs[0] == 50256).sum())

print(tokenizer.decode(first_inputs[0].tolist()))
print(f"{n_padding} padding tokens after {my_train_dataset.max_length - n_padding} real ones")
