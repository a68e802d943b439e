"""Classroom preparation and instructor mode.

``python -m helpers prepare`` does, once and before class, everything slow: fetching (or copying
from a USB stick) and verifying the dataset and GPT-2's weights, writing the splits, running the
frozen trunk over every message, training the classifier (exact and flexible modes, and flexible in bf16
where the CPU has it natively: notebook 4 compares them), and
measuring deployment performance. Running it again skips whatever is already done.

With ``WORKBOOK_INSTRUCTOR=1`` the notebooks then *replay* the prepared runs instead of training
live, and evaluate through the prepared trunk cache, so each runs top to bottom in seconds.
"""
import contextlib
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from .. import settings
from ..settings import SettingsError
from ..data import (
    SMS_SPAM_URLS,
    DatasetError,
    check_settings,
    dataset_csv_path,
    download_sms_spam_dataset,
    get_spam_dataloaders,
    load_labelled_csv,
    prepare_spam_splits,
)
from ..fast.engine import trunk_cache_dir
from ..gpt import GPTModel, get_model_config
from ..storage.download import atomic_copy
from ..fast.engine import plain_model
from ..storage.files import (
    CorruptFileError,
    expected_checksum,
    read_csv,
    read_json,
    remove_checked,
    write_csv,
    write_json,
)
from ..storage.paths import ENV_INSTRUCTOR, PROJECT_ROOT, StorageError, data_dir, display_path, instructor_mode
from ..weights import (
    HF_MODEL_PAGE,
    HF_REPOS,
    WeightsError,
    gpt2_weights_path,
    load_weights_into_gpt,
    test_model_enabled,
)
from .checkpoint import (
    CHECKPOINT_FILE,
    CheckpointError,
    default_checkpoint_dir,
    describe,
    load_classifier,
    save_classifier,
    stopped_early,
    training_record,
)
from .pipeline import DEFAULT_MODEL, LECTURE_SETTINGS, active_model_name
from .slides import SlidesError, build_decks

RUNS = ("exact", "flexible", "flexible-bf16")  # notebook 4's three fast runs; the last only where bf16 is native


def _run_kind(name):
    """A prepared run's (mode, precision): ``"flexible-bf16"`` is flexible mode in bf16, as notebook 4 trains it."""
    mode, _, precision = name.partition("-")
    return mode, precision or "fp32"


def bf16_run_possible():
    from ..fast.precision import bf16_native

    return bf16_native("cpu")


def runs_here():
    """The runs ``prepare`` makes on this machine: the bf16 one only where the CPU has bf16 natively."""
    return [name for name in RUNS if _run_kind(name)[1] != "bf16" or bf16_run_possible()]


NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"


class PrepareError(RuntimeError):
    """Something needed is missing or corrupted; the message lists what to fetch and where to put it."""


def prepared_dir(model_size=DEFAULT_MODEL) -> Path:
    return data_dir() / "prepared" / default_checkpoint_dir(active_model_name(model_size)).name


def run_checkpoint(name, model_size=DEFAULT_MODEL) -> Path:
    """Where a prepared run's classifier lives: in ``data/prepared/<model>/<run>``, which nothing else writes
    (notebook 4 saves the student's classifier in ``data/checkpoints/``)."""
    return prepared_dir(model_size) / name


# --------------------------------------------------------------------------- replay
def _record_path(name, model_size=DEFAULT_MODEL):
    return prepared_dir(model_size) / "runs" / f"{name}.json"


def read_prepared(name, model_size=DEFAULT_MODEL) -> dict:
    path = _record_path(name, model_size)
    if not path.is_file():
        raise PrepareError(f"instructor mode needs the prepared {name!r} run, and {display_path(path)} is missing: "
                           f"run `python -m helpers prepare` first, or set {ENV_INSTRUCTOR}=0 to train live.")
    try:
        return _check_record(read_json(path), name, path)
    except CorruptFileError as exc:
        raise PrepareError(f"instructor mode cannot replay the prepared {name!r} run: {exc}. Run "
                           f"`python -m helpers prepare` again (it rebuilds it), or set {ENV_INSTRUCTOR}=0.") from exc


def _check_record(record, name, path):
    """A run record's fields have the types replay needs (else: CorruptFileError, and it is rebuilt)."""
    fields = {"date": str, "seconds": (int, float), "trunk_seconds": (int, float), "log": list, "curves": list,
              "checkpoint_sha256": str}
    if name == "exact":
        fields["lecture_seconds_projected"] = (int, float)
    for field, kind in fields.items():
        if not isinstance(record.get(field), kind):
            raise CorruptFileError(path, f"lacks a valid {field!r}")
    if len(record["curves"]) != 5:
        raise CorruptFileError(path, "does not hold the five training curves")
    return record


def load_prepared_run(name, model_size=DEFAULT_MODEL, device="cpu", quiet=False, into=None):
    """The classifier of a prepared run, ``(model, recipe)``: exactly the weights its record names.

    Refused (:class:`PrepareError`, saying to run ``prepare`` again) when the checkpoint is missing, corrupt,
    not the file the record was written with, or not a complete run of that engine; all of that is checked
    before any weight is read. ``into``: a classifier to read the weights into (see :func:`load_classifier`).
    """
    record = read_prepared(name, model_size)
    folder = run_checkpoint(name, model_size)
    again = f"Run `python -m helpers prepare` again (it trains this run again), or set {ENV_INSTRUCTOR}=0."
    recorded = None

    def the_recorded_run(recipe):  # the file's checksum was verified when it was opened: compare it with the record
        nonlocal recorded
        recorded = expected_checksum(folder / CHECKPOINT_FILE)
        if recorded != record["checkpoint_sha256"]:
            raise PrepareError(f"{display_path(folder)} is not the classifier the prepared {name!r} run saved (its "
                               f"checksum differs from the run's record). {again}")
        if recipe["training"]["engine"] != name or stopped_early(recipe):
            raise PrepareError(f"{display_path(folder)} holds {describe(recipe)}, not a complete {name!r} run. {again}")

    try:
        model, recipe = load_classifier(folder, expected_model_name=active_model_name(model_size), device=device,
                                        check_recipe=the_recorded_run, into=into)
    except (CheckpointError, CorruptFileError) as exc:
        raise PrepareError(f"the prepared {name!r} run's classifier cannot be used: {exc}. {again}") from exc
    if not quiet:
        print(f"▶ Instructor mode: the classifier of the {name!r} run prepared on {record['date']} "
              f"(sha256 {recorded[:12]}…, verified):\n  {describe(recipe)}")
    return model, recipe


def prepared_run_available(name, model_size=DEFAULT_MODEL) -> bool:
    """Whether ``prepare`` recorded run ``name`` (the bf16 run only where the CPU has bf16 natively)."""
    return _record_path(name, model_size).is_file()


def replay_prepared_run(name, model, model_size=None):
    """Print the prepared run's log, load its trained weights into ``model``; returns its five tracking lists.

    The run is the one prepared for ``model``'s GPT-2 size (or ``model_size``)."""
    model_size = model_size or getattr(plain_model(model), "model_size", None) or DEFAULT_MODEL
    record = read_prepared(name, model_size)
    print(f"▶ Instructor mode: replaying the {name!r} run prepared on {record['date']} "
          f"({record['seconds']:.0f} s then). Set {ENV_INSTRUCTOR}=0 to train live.\n")
    print("\n".join(record["log"]))
    # read into it, not beside it (one GPT-2 in memory); it then is the prepared classifier, and says so
    _, recipe = load_prepared_run(name, model_size, quiet=True, into=plain_model(model))
    plain_model(model).replayed_run = name  # training_record: what trained it is the prepared run
    print(f"\nThe weights are the prepared run's (verified): {describe(recipe)}")
    return tuple(record["curves"])


def instructor_mode_for_training(model, train_classifier_simple):
    """Notebook 4's instructor-mode cell: ``(model, train)`` for the lecture's training cell.

    For students (``WORKBOOK_INSTRUCTOR`` unset) it returns both unchanged and says nothing. In instructor mode
    ``model`` reads its frozen trunk from the prepared cache (the same numbers, many times faster), and
    ``train`` replays the run ``prepare`` trained (its log, its weights and its record) instead of training."""
    if not instructor_mode():
        return model, train_classifier_simple
    from .pipeline import attach_prepared_trunk_cache

    model = attach_prepared_trunk_cache(model)
    lecture_minutes = prepared_seconds("lecture", getattr(plain_model(model), "model_size", None) or DEFAULT_MODEL) / 60

    def replay(model, train_loader, val_loader, optimizer, device, num_epochs, eval_freq, eval_iter):
        curves = replay_prepared_run("exact", model)
        print(f"(The timing line below measures the replay. The lecture loop takes about {lecture_minutes:.0f} "
              "minutes on this machine, projected during preparation.)")
        return curves

    print("▶ Instructor mode: the training cell replays the run prepared before class (its log and weights).")
    return model, replay


def prepared_seconds(name, model_size=DEFAULT_MODEL) -> float:
    """The prepared run's training time; for ``"lecture"``, the lecture loop's projected time."""
    if name == "lecture":
        return read_prepared("exact", model_size)["lecture_seconds_projected"]
    return read_prepared(name, model_size)["seconds"]


def prepared_performance(model_size=DEFAULT_MODEL):
    path = prepared_dir(model_size) / "performance.csv"
    if not path.is_file():
        raise PrepareError(f"{display_path(path)} is missing: run `python -m helpers prepare` first.")
    try:
        table = read_csv(path, index_col=0)
    except CorruptFileError as exc:
        raise PrepareError(f"{exc}: run `python -m helpers prepare` again (it measures again).") from exc
    print(f"▶ Instructor mode: the measurements taken during preparation ({display_path(path)}).")
    return table


# --------------------------------------------------------------------------- preparation steps
def _staged_dataset(source):
    for name in ("sms_spam_collection.zip", "sms+spam+collection.zip", "smsspamcollection.zip", "SMSSpamCollection"):
        if (Path(source) / name).is_file():
            return Path(source) / name
    return None


def _staged_weights(source, repo):
    for candidate in (Path(source) / repo / "model.safetensors", Path(source) / f"{repo}.safetensors"):
        if candidate.is_file():
            return candidate
    return None


def _verified_marker(path) -> Path:
    """Where the note "this weights file was verified" lives: in the data folder, never beside the file
    (which may be on a read-only USB stick or a shared folder)."""
    key = hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:16]
    return data_dir() / "gpt2" / ".verified" / f"{key}.json"


def _verify_weights(path, model_size):
    marker = _verified_marker(path)
    stamp = {"path": str(Path(path).resolve()), "size": path.stat().st_size, "mtime_ns": path.stat().st_mtime_ns}
    try:
        if read_json(marker) == stamp:
            return
    except CorruptFileError:
        pass
    with torch.device("meta"):
        meta = GPTModel(get_model_config(model_size))
    model = meta.to_empty(device="cpu")
    load_weights_into_gpt(model, path)  # raises WeightsError naming the file and tensor
    write_json(marker, stamp)


def fetch_inputs(model_size, source):
    """Dataset and weights in place and verified; otherwise one PrepareError listing what to do."""
    problems = []
    if settings.DATASET_CSV is not None:  # your own data (helpers/settings.py): nothing to fetch
        load_labelled_csv(dataset_csv_path())  # readable, with a text and a label column (else DatasetError)
        print(f"  ✓ dataset: your own, {display_path(dataset_csv_path())} (DATASET_CSV in helpers/settings.py)")
    else:
        try:
            staged = _staged_dataset(source) if source else None
            path = download_sms_spam_dataset(local_copy=staged)
            print(f"  ✓ dataset: {display_path(path)} (sha256 verified)")
        except DatasetError as exc:
            problems.append(f"• the SMS Spam Collection: download {SMS_SPAM_URLS[0]} and put it at "
                            f"{display_path(data_dir() / 'sms_spam_collection.zip')}"
                            + (f" or in {source}" if source else "") + f"\n  ({str(exc).splitlines()[0]})")
    if test_model_enabled():
        print("  ✓ weights: none needed, the tiny random TEST MODEL is selected (WORKBOOK_TEST_MODEL=1)")
    else:
        repo = HF_REPOS[model_size]
        target = data_dir() / "gpt2" / repo / "model.safetensors"
        try:
            staged = _staged_weights(source, repo) if source else None
            if staged is not None and not target.is_file():
                atomic_copy(staged, target)  # then verified below; the source folder is only read
                try:
                    _verify_weights(target, model_size)
                except WeightsError:
                    target.unlink(missing_ok=True)
                    raise
            path = gpt2_weights_path(model_size)
            _verify_weights(path, model_size)
            print(f"  ✓ weights: {display_path(path)} (every tensor present with the right shape)")
        except WeightsError as exc:
            problems.append(f"• GPT-2 {model_size}: download model.safetensors from {HF_MODEL_PAGE.format(repo=repo)} "
                            f"and put it at {display_path(target)}" + (f" or at {source}/{repo}/model.safetensors"
                                                                       if source else "")
                            + f"\n  ({str(exc).splitlines()[0]})")
    if problems:
        raise PrepareError("Not everything the lecture needs is here. Fetch these on a machine with network "
                           "access, then run this command again:\n" + "\n".join(problems))


def _build_caches(model_size):
    from ..classifier import build_spam_classifier
    from ..fast.engine import TrunkCache

    loaders = get_spam_dataloaders()
    with contextlib.redirect_stdout(io.StringIO()):  # no test-model banner here
        model = build_spam_classifier(model_size, "cpu")
    timings = _read_trunk_seconds(model_size)
    if any(name not in timings for name in runs_here()):
        from .pipeline import _duration, projected_seconds

        messages = sum(len(loader.dataset) for loader in loaders)
        seconds = projected_seconds(model, loaders, trunk_only=True)
        print(f"  … the trunk pass: {messages:,} messages, about {_duration(seconds)} per run here (projected)")
    for name in runs_here():
        mode, precision = _run_kind(name)
        cache = TrunkCache(model, mode, precision=precision)
        if cache.load(trunk_cache_dir()) and name in timings:
            print(f"  ✓ trunk cache ({name}): {len(cache)} messages, already prepared")
            continue
        cache = TrunkCache(model, mode, precision=precision)  # built (again, if its time was not recorded)
        start = time.time()
        cache.add_datasets([loader.dataset for loader in loaders])
        timings[name] = time.time() - start
        cache.save(trunk_cache_dir())
        write_json(_trunk_seconds_path(model_size), timings)
        print(f"  ✓ trunk cache ({name}): {len(cache)} messages in {timings[name]:.0f} s")


def _trunk_seconds_path(model_size):
    return prepared_dir(model_size) / "runs" / "trunk_seconds.json"


def _read_trunk_seconds(model_size) -> dict:
    """How long each run's trunk pass took when ``prepare`` built its cache (a run's time includes it, as
    notebook 4's live runs do, which build their cache inside the timed cell)."""
    path = _trunk_seconds_path(model_size)
    try:
        timings = read_json(path) if path.is_file() else {}
    except CorruptFileError:
        return {}
    return {k: v for k, v in timings.items() if isinstance(v, (int, float))} if isinstance(timings, dict) else {}


def _train_and_record(name, model_size):
    from ..classifier import build_spam_classifier
    from ..fast.engine import TrunkCache, train_classifier_fast

    record_path = _record_path(name, model_size)
    checkpoint = run_checkpoint(name, model_size)
    mode, precision = _run_kind(name)
    if record_path.exists():
        try:  # the record, and the very classifier it names, complete: as the replay will check them
            load_prepared_run(name, model_size, quiet=True)
            print(f"  ✓ {name} run: already prepared (classifier verified against its record)")
            return
        except PrepareError as exc:
            reason = str(exc).split(" Run `python")[0].rstrip(".")
            reason = reason.split(" run: ", 1)[-1] if reason.startswith("instructor mode cannot replay") else reason
            print(f"  ! {name} run: {reason}: training it again")
    loaders = get_spam_dataloaders()
    with contextlib.redirect_stdout(io.StringIO()):  # no test-model banner in the report
        model = build_spam_classifier(model_size, "cpu")
    cache = TrunkCache(model, mode, precision=precision)
    prebuilt = cache.load(trunk_cache_dir())  # else the run builds it, inside its own time
    torch.manual_seed(123)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LECTURE_SETTINGS["lr"],
                                  weight_decay=LECTURE_SETTINGS["weight_decay"],
                                  fused=mode == "flexible")  # as notebook 4 trains flexible mode
    from .pipeline import _duration, projected_seconds

    seconds = projected_seconds(model, loaders, LECTURE_SETTINGS, engine=mode)
    print(f"  … {name} run: {LECTURE_SETTINGS['num_epochs'] * len(loaders[0]):,} steps, about {_duration(seconds)} "
          "here (projected from a step timed now)")
    log = io.StringIO()
    start = time.time()
    with contextlib.redirect_stdout(log):
        curves = train_classifier_fast(model, loaders[0], loaders[1], optimizer, "cpu",
                                       num_epochs=LECTURE_SETTINGS["num_epochs"], eval_freq=LECTURE_SETTINGS["eval_freq"],
                                       eval_iter=LECTURE_SETTINGS["eval_iter"], mode=mode, cache=cache,
                                       precision=precision)
    seconds = time.time() - start
    training = training_record(model, optimizer, loaders[0], LECTURE_SETTINGS["num_epochs"],
                               LECTURE_SETTINGS["eval_freq"], LECTURE_SETTINGS["eval_iter"], engine=name, seconds=seconds)
    save_classifier(model, checkpoint, max_length=loaders[0].dataset.max_length,
                    pooling="last" if mode == "exact" else "last_real", training=training,
                    saved_by="python -m helpers prepare")
    trunk_seconds = _read_trunk_seconds(model_size).get(name, 0.0) if prebuilt else 0.0
    record = {"date": time.strftime("%Y-%m-%d %H:%M"), "seconds": seconds + trunk_seconds, "trunk_seconds": trunk_seconds,
              "checkpoint_sha256": expected_checksum(checkpoint / CHECKPOINT_FILE),
              "log": [line for line in log.getvalue().splitlines() if not line.startswith("Trunk cache")],
              "curves": list(curves)}
    if name == "exact":
        record["lecture_seconds_projected"] = _project_lecture_loop(model_size, loaders)
    write_json(record_path, record)
    if name == "exact":  # the deployment measurements were of the previous classifier: measure this one
        remove_checked(prepared_dir(model_size) / "performance.csv")
    print(f"  ✓ {name} run: trained in {seconds:.0f} s, saved to {display_path(checkpoint)}")


def _project_lecture_loop(model_size, loaders, steps=3):
    """The lecture loop's full-run time on this machine, projected from a few measured steps."""
    from ..classifier import build_spam_classifier
    from .performance import project_training_seconds, seconds_per_eval_batch, seconds_per_step

    with contextlib.redirect_stdout(io.StringIO()):
        model = build_spam_classifier(model_size, "cpu")
    optimizer = torch.optim.AdamW(model.parameters(), lr=LECTURE_SETTINGS["lr"],
                                  weight_decay=LECTURE_SETTINGS["weight_decay"])
    return project_training_seconds(seconds_per_step(model, loaders[0], optimizer, steps),
                                    seconds_per_eval_batch(model, loaders[1], batches=2),
                                    steps_per_epoch=len(loaders[0]))


def _measure_performance(model_size):
    from ..tokenizer import get_gpt2_tokenizer
    from .performance import compare_fp32_int8

    path = prepared_dir(model_size) / "performance.csv"
    try:
        read_csv(path, index_col=0)
        print("  ✓ performance measurements: already prepared")
        return
    except CorruptFileError as exc:
        if path.exists():
            print(f"  ! {exc}: measuring again")
    model, recipe = load_prepared_run("exact", model_size, quiet=True)
    test_loader = get_spam_dataloaders()[2]
    texts = test_loader.dataset.data["Text"].tolist()[:64]
    table = compare_fp32_int8(model, get_gpt2_tokenizer(), texts, recipe["max_length"], test_loader)
    write_csv(path, table)
    print(f"  ✓ performance measurements: {display_path(path)}")


def lecture_notebooks():
    """The lecture's notebooks, 01 to 06 (07 goes beyond the lecture and trains live)."""
    return [path for path in sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb")) if int(path.name[:2]) <= 6]


def time_notebooks(timeout=600, keep=None) -> dict:
    """Run each lecture notebook top to bottom in instructor mode; seconds per notebook.

    Each runs in its own process (``nbconvert --execute``, a fresh kernel), as an instructor
    would start it; the time includes starting the kernel. ``keep``: a folder for the executed notebooks.
    """
    times = {}
    env = {**os.environ, ENV_INSTRUCTOR: "1"}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = keep or scratch
        Path(scratch).mkdir(parents=True, exist_ok=True)
        for path in lecture_notebooks():
            start = time.perf_counter()
            result = subprocess.run([sys.executable, "-m", "nbconvert", "--to", "notebook", "--execute",
                                     f"--ExecutePreprocessor.timeout={timeout}", "--output-dir", scratch, str(path)],
                                    cwd=NOTEBOOKS_DIR, env=env, capture_output=True, text=True)
            times[path.name] = time.perf_counter() - start
            if result.returncode != 0:
                last_lines = re.sub(r"\x1b\[[0-9;]*m", "", result.stderr).strip().splitlines()[-6:]
                raise PrepareError(f"{path.name} failed in instructor mode:\n" + "\n".join(last_lines))
            print(f"  ✓ {path.name}: {times[path.name]:.1f} s in instructor mode")
    return times


def build_slides(executed=None):
    """Offline decks of the lecture notebooks in data/slides/; from ``executed`` notebooks when given.

    Optional for class (RISE works offline in JupyterLab), so a failure is reported, not raised.
    """
    notebooks = lecture_notebooks()
    out_dir = data_dir() / "slides"
    if executed is None and all((out_dir / f"{nb.stem}.slides.html").is_file() for nb in notebooks):
        print("  ✓ decks written before (python -m helpers slides writes them again)")
        return
    try:
        sources = [executed / nb.name for nb in notebooks] if executed is not None else notebooks
        build_decks(sources, out_dir, execute=executed is None, instructor=True)
    except SlidesError as exc:
        print(f"  ✗ no decks: {exc}\n    Presenting with RISE in JupyterLab needs none of this.")
    finally:
        if executed is not None:
            shutil.rmtree(executed, ignore_errors=True)


def prepare(model_size=DEFAULT_MODEL, source=None, timing=True, retime=False) -> dict:
    """Prepare everything for class; returns the report (also saved as ``report.json``)."""
    check_settings()
    get_model_config(model_size)
    source = Path(source).expanduser() if source is not None else None
    if source is not None and source.is_file():
        raise PrepareError(f"--from {source} is a file, not a folder: give the folder (e.g. a USB stick) that holds "
                           "sms_spam_collection.zip and gpt2/model.safetensors")
    if source is not None and not source.is_dir():
        raise PrepareError(f"the folder to copy from, {source}, does not exist")
    start = time.time()
    print(f"Preparing the workbook for {active_model_name(model_size)} in {display_path(data_dir())}")
    print("1/5 dataset and weights")
    fetch_inputs(model_size, source)
    print("2/5 train / validation / test splits")
    paths = prepare_spam_splits()
    print("  ✓ " + ", ".join(display_path(p) for p in paths.values()))
    print("3/5 the frozen trunk, once per message")
    _build_caches(model_size)
    print("4/5 training (the fast engine: exact and flexible modes, flexible in bf16) and deployment measurements")
    if not bf16_run_possible():
        print("  – flexible-bf16 run: this CPU has no native bf16, so notebook 4 has no bf16 comparison to replay")
    for name in runs_here():
        _train_and_record(name, model_size)
    _measure_performance(model_size)
    report_path = prepared_dir(model_size) / "report.json"
    try:
        report = read_json(report_path)
        if not isinstance(report.get("notebook_seconds", {}), dict):
            raise CorruptFileError(report_path, "holds no valid notebook_seconds")
    except CorruptFileError as exc:
        if report_path.exists():
            print(f"  ! {exc}: writing a new one")
        report = {}
    print("5/5 notebooks in instructor mode")
    executed = None
    if timing and (retime or "notebook_seconds" not in report):
        executed = data_dir() / "slides" / "executed"
        report["notebook_seconds"] = time_notebooks(keep=executed)
    elif "notebook_seconds" in report:
        print("  ✓ timed before (use --retime to time again)")
    print("slides: an offline deck per lecture notebook, executed in instructor mode")
    build_slides(executed)
    report |= {"model": active_model_name(model_size), "prepared": time.strftime("%Y-%m-%d %H:%M")}
    write_json(report_path, report)
    print(f"\nReady ({time.time() - start:.0f} s). For class: export {ENV_INSTRUCTOR}=1, then open the notebooks.")
    for name, seconds in report.get("notebook_seconds", {}).items():
        print(f"  {name:<26} {seconds:5.1f} s")
    return report


def main_prepare(args) -> int:
    try:
        prepare(args.size, args.source, timing=not args.no_timing, retime=args.retime)
    except (PrepareError, DatasetError, WeightsError, StorageError, CheckpointError, SlidesError, SettingsError) as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 2
    return 0
