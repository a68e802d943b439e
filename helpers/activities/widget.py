"""Activity 4's interactive spam checker (ipywidgets): a text box, a button, a verdict and a confidence bar."""
from ..inference import classify_review


def spam_checker(model, tokenizer, device, max_length, initial_text=""):
    """Return a widget; type a message and press *Classify*.

    It still builds where no widget front end exists (nbval, plain Python), and ``check(text)``
    on the returned box runs the same classification without a click.
    """
    import ipywidgets as widgets

    text = widgets.Textarea(value=initial_text, placeholder="Type or paste a text message…",
                            layout=widgets.Layout(width="100%", height="80px"))
    button = widgets.Button(description="Classify", button_style="primary", icon="search")
    bar = widgets.FloatProgress(value=0.0, min=0.0, max=1.0, description="P(spam)",
                                layout=widgets.Layout(width="320px"))
    verdict = widgets.HTML("<i>Type a message and press Classify.</i>")

    def check(message):
        try:
            label, probabilities = classify_review(message, model, tokenizer, device, max_length)
        except ValueError as exc:  # an empty message: say so, don't crash
            verdict.value = f"<i>{exc}</i>"
            bar.value = 0.0
            return None
        bar.value = float(probabilities[1])
        bar.bar_style = "danger" if label == 1 else "success"
        name = "🚫 Spam" if label == 1 else "✅ Ham"
        verdict.value = f"<b style='font-size:1.2em'>{name}</b> ({probabilities[label]:.1%} confident)"
        return label, probabilities

    button.on_click(lambda _: check(text.value))
    box = widgets.VBox([text, widgets.HBox([button, bar]), verdict])
    box.check = check
    if initial_text:
        check(initial_text)
    return box
