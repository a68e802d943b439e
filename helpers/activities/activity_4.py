"""Activity 4 (notebook 6): the student's own messages, classified."""
import sys

from .feedback import Feedback, caller_names, untouched

_QUESTIONS = (
    "What do the messages it disagreed with have in common? Which words or signs (free, win, £, numbers, !!!, "
    "links) might it react to?",
    "Would a person side with you or with the model? What should a filter do with messages it is unsure about?",
)
_EXAMPLES = {"my_spam": '["WINNER! Claim your prize: call 09061701461 now"]',
             "my_ham": '["Running late, see you at 7"]'}


def check_activity_4(my_spam=..., my_ham=..., *, model, tokenizer, device, max_length, points=None):
    """Activity 4 — test your own messages: an exploration, not a test.

    ``my_spam`` and ``my_ham`` are lists of messages you wrote to be spam and ham. Each is classified;
    the report says on how many the model agrees with you, lists the ones it disagreed with, and asks
    questions about them. Returns True once both lists were classified; with ``points`` (nbgrader), the
    :class:`~helpers.activities.feedback.Score`: half the points for each list classified.
    """
    from ..inference import classify_review

    from .widget import class_names_of, is_test_model

    names = class_names_of(model)
    if set(names) != {"ham", "spam"}:
        raise ValueError(f"activity 4 compares your spam and ham with a ham/spam classifier; this one's classes are "
                         f"{'/'.join(names)}. Use it with a ham/spam classifier (the lecture's).")
    spam = names.index("spam")
    answers = dict(my_spam=my_spam, my_ham=my_ham)
    fb = Feedback("Activity 4: test your own messages (an exploration: there is no wrong answer)",
                   caller_names(sys._getframe(1), answers), done=None)
    agreed, total, disagreed = 0, 0, []
    for key, intended in (("my_spam", spam), ("my_ham", 1 - spam)):
        messages, name = answers[key], fb.name(key)
        if untouched(messages):
            fb.skip(key)
            continue
        if isinstance(messages, str) or not isinstance(messages, (list, tuple)) or not messages:
            fb.wrong(f"{name} should be a non-empty list of messages, e.g. {_EXAMPLES[key]}")
            continue
        failed_before = fb.failed
        for message in messages:
            try:
                label, probabilities = classify_review(message, model, tokenizer, device, max_length)
            except (TypeError, ValueError) as exc:
                fb.wrong(f"{name}: {exc}")
                continue
            total += 1
            verdict = names[label]
            shown = message if len(message) <= 60 else message[:57] + "..."
            line = f"{shown!r} → {verdict} (P(spam) = {probabilities[spam]:.2f})"
            if label == intended:
                agreed += 1
                fb.lines.append(f"  ✅ {line}")
            else:
                disagreed.append(line)
                fb.lines.append(f"  🤔 {line}: you wrote it as {names[intended]}")
        if fb.failed == failed_before:
            fb.passed += 1  # this list is done: every message in it was classified (agreeing or not)
    if total and is_test_model(model):  # its verdicts are noise: nothing to explain in them
        fb.note(f"The model agreed with you on {agreed} of {total} messages, by chance: it is the test model, "
                "with random weights, so its verdicts are noise. Run this check again with GPT-2 (the lecture's "
                "classifier), then ask which signs it reacts to.")
    elif total:
        fb.note(f"The model agreed with you on {agreed} of {total} messages.")
        if disagreed:
            for question in _QUESTIONS:
                fb.note(f"• {question}")
        else:
            fb.note("• Now try to fool it: a spam without \"free\" or a phone number, or a friendly message "
                    "full of \"!!!\" and numbers.")
    return fb.report(points)
