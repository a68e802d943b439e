"""Activity 4's interactive spam checker (ipywidgets): a text box, a button, a verdict and a confidence bar."""
import functools

from ..data import CLASS_NAMES
from ..inference import classify_review


def class_names_of(model):
    """The classifier's class names: a loaded one carries its checkpoint's; else ham/spam for two classes."""
    names = getattr(model, "class_names", None)
    if names is None:
        count = model.out_head.out_features
        names = CLASS_NAMES if count == len(CLASS_NAMES) else tuple(f"class {i}" for i in range(count))
    return tuple(names)


def is_test_model(model) -> bool:
    """Whether ``model`` (or the classifier it stands in for) is the tiny random test model."""
    return bool(getattr(model, "is_test_model", False))


#: What a view without a running kernel shows instead of the widget (ipywidgets keeps 110 characters of it).
STATIC_TEXT = "Activity 4's spam checker: a text box and a Classify button (run this cell in Jupyter to use it)"


@functools.cache
def _checker_box_class(widgets):
    """A VBox whose text form (a static view, an offline deck, nbconvert) says what it is, not its children's repr."""
    class SpamCheckerBox(widgets.VBox):
        def __repr__(self):
            return STATIC_TEXT

    return SpamCheckerBox


def spam_checker(model, tokenizer, device, max_length, initial_text=""):
    """Return a widget; type a message and press *Classify*.

    It still builds where no widget front end exists (nbval, plain Python), and ``check(text)``
    on the returned box runs the same classification without a click.
    """
    import html

    import ipywidgets as widgets

    text = widgets.Textarea(value=initial_text, placeholder="Type or paste a text message…",
                            layout=widgets.Layout(width="100%", height="80px"))
    button = widgets.Button(description="Classify", button_style="primary", icon="search")
    names = class_names_of(model)
    two_classes = len(names) == 2
    bar = widgets.FloatProgress(value=0.0, min=0.0, max=1.0, description=f"P({names[1]})" if two_classes else "P",
                                layout=widgets.Layout(width="320px"))
    verdict = widgets.HTML("<i>Type a message and press Classify.</i>")

    def check(message):
        try:
            label, probabilities = classify_review(message, model, tokenizer, device, max_length)
        except ValueError as exc:  # an empty message: say so, don't crash
            verdict.value = f"<i>{exc}</i>"
            bar.value = 0.0
            return None
        bar.value = float(probabilities[1] if two_classes else probabilities[label])
        if not two_classes:
            bar.description = f"P({names[label]})"
        bar.bar_style = "danger" if names[label] == "spam" else "success"
        mark = {"spam": "🚫 ", "ham": "✅ "}.get(names[label], "")
        shown = html.escape(names[label].capitalize() if mark else names[label])
        verdict.value = f"<b style='font-size:1.2em'>{mark}{shown}</b> ({probabilities[label]:.1%} confident)"
        if is_test_model(model):  # under the verdict, every time: it must not be read as the lesson's
            verdict.value += ("<br><i>Test model (random weights): this verdict is noise, not the lesson. With "
                              "GPT-2 the classifier tells spam from ham.</i>")
        return label, probabilities

    button.on_click(lambda _: check(text.value))
    box = _checker_box_class(widgets)([text, widgets.HBox([button, bar]), verdict])
    box.check = check
    if initial_text:
        check(initial_text)
    return box
