# Solution to hands-on activity 1: explore the SMS spam dataset
counts = df["Label"].value_counts()
ham_count = counts["ham"]
spam_count = counts["spam"]
imbalance_ratio = ham_count / spam_count  # about 6.5 ham messages per spam message

spam_df = df[df["Label"] == "spam"]
ham_df = df[df["Label"] == "ham"]
my_balanced_df = pd.concat([ham_df.sample(n=len(spam_df), random_state=123), spam_df])

my_splits = random_split(my_balanced_df, 0.7, 0.1)
print(f"{ham_count} ham, {spam_count} spam, ratio {imbalance_ratio:.2f}:1")
