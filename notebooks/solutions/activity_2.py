# Solution to hands-on activity 2: create and test data loaders
first_inputs, first_labels = next(iter(train_loader))
n_padding = int((first_inputs[0] == 50256).sum())

short_dataset = SpamDataset(paths["test"], tokenizer, max_length=20)
short_inputs, _ = short_dataset[0]
truncated_length = len(short_inputs)

print(tokenizer.decode(first_inputs[0].tolist()))
print(f"{n_padding} padding tokens; every item of the 20-token dataset has {truncated_length} ids")
