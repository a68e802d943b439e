"""Fine-tuning strategies beyond the lecture's, compared on the same data with the same budget.

Every strategy starts from the same pretrained GPT-2 with the same seeded 2-class head, trains
with the lecture's loop, optimizer (AdamW, lr 5e-5, weight decay 0.1) and number of epochs, and
is evaluated on the full validation and test sets. Only *what* may change differs.
"""
import time

import torch

from .classifier import build_spam_classifier, unfreeze_top
from .gpt import count_parameters
from .lora import apply_lora
from .training import calc_accuracy_loader, train_classifier_simple


def _lecture(model):
    return model  # build_spam_classifier already applied the lecture's surgery


def _last_two_blocks(model):
    return unfreeze_top(model, trainable_blocks=2)


def _all_layers(model):
    for param in model.parameters():
        param.requires_grad = True
    return model


def _lora(model, rank=16, alpha=16.0):
    return apply_lora(model, rank=rank, alpha=alpha)


STRATEGIES = {
    "lecture: last block + final norm + head": _lecture,
    "last two blocks": _last_two_blocks,
    "all layers": _all_layers,
    "LoRA (rank 16, alpha 16) + head": _lora,
    "gradual unfreezing": None,  # head + final norm first, then one more block each epoch
}


def _gradual_unfreezing_stage(model, epoch):
    """Epoch 0: head and final norm only; epoch k: the top k blocks too."""
    for param in model.parameters():
        param.requires_grad = False
    for param in model.out_head.parameters():
        param.requires_grad = True
    return unfreeze_top(model, trainable_blocks=epoch)


def run_strategy(name, loaders, model_size="gpt2-small (124M)", device="cpu", num_epochs=5, max_steps=None,
                 lr=5e-5, weight_decay=0.1):
    """Train one strategy from the pretrained model; returns a row of the comparison table."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose one of {list(STRATEGIES)}")
    train_loader, val_loader, test_loader = loaders
    model = build_spam_classifier(model_size, device)
    torch.manual_seed(123)
    start = time.time()
    if STRATEGIES[name] is not None:
        model = STRATEGIES[name](model)
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        train_classifier_simple(model, train_loader, val_loader, optimizer, device, num_epochs=num_epochs,
                                eval_freq=50, eval_iter=5, max_steps=max_steps)
        trainable = count_parameters(model)[0]
    else:  # gradual unfreezing: one optimizer; newly unfrozen weights get their AdamW state when first updated
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        per_epoch = None if max_steps is None else max(1, max_steps // num_epochs)
        trainable = 0
        for epoch in range(num_epochs):
            _gradual_unfreezing_stage(model, epoch)
            trainable = max(trainable, count_parameters(model)[0])
            print(f"-- gradual unfreezing, epoch {epoch + 1}: head, final norm and the top {epoch} block(s) train")
            train_classifier_simple(model, train_loader, val_loader, optimizer, device, num_epochs=1,
                                    eval_freq=50, eval_iter=5, max_steps=per_epoch)
    seconds = time.time() - start
    model.eval()
    return {"strategy": name, "trainable parameters": trainable, "training time (s)": seconds,
            "validation accuracy": calc_accuracy_loader(val_loader, model, device),
            "test accuracy": calc_accuracy_loader(test_loader, model, device)}


def bag_of_words_baseline(train_df, val_df, test_df):
    """Classic baselines on the same split: TF-IDF features with logistic regression and naive Bayes."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import MultinomialNB

    rows = []
    for name, classifier in (("bag of words: logistic regression", LogisticRegression(max_iter=1000)),
                             ("bag of words: naive Bayes", MultinomialNB())):
        start = time.time()
        vectorizer = TfidfVectorizer(lowercase=True, ngram_range=(1, 2), min_df=1)
        features = vectorizer.fit_transform(train_df["Text"])
        classifier.fit(features, train_df["Label"])
        seconds = time.time() - start
        parameters = classifier.coef_.size + classifier.intercept_.size if hasattr(classifier, "coef_") else \
            classifier.feature_log_prob_.size + classifier.class_log_prior_.size
        rows.append({"strategy": name, "trainable parameters": parameters, "training time (s)": seconds,
                     "validation accuracy": classifier.score(vectorizer.transform(val_df["Text"]), val_df["Label"]),
                     "test accuracy": classifier.score(vectorizer.transform(test_df["Text"]), test_df["Label"])})
    return rows
