"""Shared code of the GPT-2 spam-classification workbook.

Everything a notebook calls is importable from here directly, e.g. ``from helpers import SpamDataset``.
One definition, one home: notebooks display this code with ``show_source`` instead of copying it.

The package has layers you can see in its folders:

* the **lecture core**, at the top level: ``data``, ``tokenizer``, ``gpt``, ``weights``, ``classifier``,
  ``training``, ``metrics``, ``inference``: the slides' functions and classes, written as the slides write
  them. They import nothing but each other and ``storage``;
* ``storage/``: paths, checked files and downloads, below everything;
* the extras, around the core: ``fast/`` (the fast engine), ``classroom/`` (pipeline, checkpoints,
  instructor mode, the book's numbers, measurements, slides, command line), ``activities/``,
  ``beyond/`` (notebook 7) and ``figures/``.
"""
from .classifier import (
    build_spam_classifier,
    check_classifier,
    classifier_parameter_counts,
    prepare_for_classification,
    unfreeze_top,
)
from .data import (
    CLASS_NAMES,
    LABEL_MAP,
    DatasetError,
    SpamDataset,
    create_balanced_dataset,
    create_dataloaders,
    download_sms_spam_dataset,
    encode_labels,
    check_settings,
    get_spam_dataloaders,
    load_labelled_csv,
    load_sms_spam,
    prepare_spam_splits,
    random_split,
    sms_spam_source,
)
from .gpt import (
    BASE_CONFIG,
    FeedForward,
    GPTModel,
    LayerNorm,
    MultiHeadAttention,
    TransformerBlock,
    count_parameters,
    generate,
    generate_text_simple,
    get_model_config,
    model_configs,
    text_to_token_ids,
    token_ids_to_text,
)
from .inference import classify_review
from .metrics import check_class_ids, confusion_matrix, precision_recall_f1, predict_loader
from .tokenizer import END_OF_TEXT_ID, TokenizerFileError, get_gpt2_tokenizer
from .training import calc_accuracy_loader, calc_loss_batch, calc_loss_loader, evaluate_model, train_classifier_simple
from .weights import (
    TEST_MODEL_CONFIG,
    WeightsError,
    build_test_model,
    download_and_load_gpt2,
    get_device,
    load_weights_into_gpt,
    set_seed,
    test_model_enabled,
    test_model_note,
)
from . import settings
from .settings import (
    BATCH_SIZE,
    EVAL_FREQ,
    EVAL_ITER,
    LEARNING_RATE,
    MODEL_SIZE,
    NUM_EPOCHS,
    WEIGHT_DECAY,
    SettingsError,
)
from .storage.download import DownloadError
from .storage.paths import PROJECT_ROOT, StorageError, data_dir, display_path, instructor_mode

# --------------------------------------------------------------------------- the extras
from .activities import check_activity_1, check_activity_2, check_activity_3, check_activity_4, spam_checker
from .beyond.exercises import (
    BOOK_EXERCISES,
    CHAPTER_TEST_ACCURACY,
    ReadsFirstToken,
    exercise_table,
    run_exercise,
)
from .beyond.lora import LinearWithLoRA, LoRALayer, apply_lora, merge_lora
from .beyond.strategies import STRATEGIES, bag_of_words_baseline, comparison_table, run_strategy
from .classroom.book import (
    BOOK_LOG,
    BOOK_METRICS,
    book_training_log,
    compare_log_with_book,
    compare_with_book,
    seed_as_after_initial_accuracy,
    seed_as_after_training,
)
from .classroom.checkpoint import (
    CheckpointError,
    default_checkpoint_dir,
    describe,
    load_classifier,
    read_recipe,
    rebuilt_checkpoint_dir,
    save_classifier,
    training_record,
)
from .classroom.instructor import (
    PrepareError,
    instructor_mode_for_training,
    load_prepared_run,
    prepare,
    prepared_performance,
    prepared_run_available,
    prepared_seconds,
    replay_prepared_run,
)
from .classroom.performance import compare_fp32_int8, quantize_int8
from .classroom.pipeline import (
    LECTURE_SETTINGS,
    active_model_name,
    attach_prepared_trunk_cache,
    get_trained_classifier,
    train_spam_classifier,
)
from .classroom.show import show_source
from .fast.engine import CachedTop, FastEngineError, TrunkCache, train_classifier_fast
from .fast.inference import ReadAsTrained, classify_texts
from .fast.sharing import classifier_sharing_trunk
from .fast.precision import PRECISIONS, bf16_native
from .figures.diagrams import plot_llm_stages, plot_model_surgery, plot_pipeline, plot_training_loop
from .figures.plots import (
    plot_causal_mask,
    plot_class_counts,
    plot_confusion_matrix,
    plot_padded_batch,
    plot_performance,
    plot_pretraining_effect,
    plot_strategies,
    plot_token_lengths,
    plot_transfer_learning,
    plot_values,
)

from .storage.memory import install_memory_release, release_freed_memory
from .classroom.notebook import install_notebook_help
from .classroom.threads import ThreadsError, set_torch_threads

#: One line: how many threads PyTorch uses here and why (the CPUs this process may use; notebook 1 prints it).
THREADS_NOTE = set_torch_threads()

install_notebook_help()  # in a notebook: a hint above a NameError, a short note when a cell is interrupted
install_memory_release()  # in a notebook: memory freed by a cell goes back to the system (a hub's 2 GB)
