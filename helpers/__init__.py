"""Shared code of the GPT-2 spam-classification workbook.

Everything a notebook calls is importable from here directly, e.g. ``from helpers import SpamDataset``.
One definition, one home: notebooks display this code with ``show_source`` instead of copying it.
"""
from .activities import check_activity_1, check_activity_2, check_activity_3, check_activity_4
from .book import (
    BOOK_LOG,
    BOOK_METRICS,
    book_training_log,
    compare_log_with_book,
    compare_with_book,
    seed_as_after_training,
)
from .checkpoint import CheckpointError, default_checkpoint_dir, load_classifier, save_classifier
from .classifier import build_spam_classifier, classifier_parameter_counts, prepare_for_classification
from .data import (
    CLASS_NAMES,
    LABEL_MAP,
    DatasetError,
    SpamDataset,
    create_balanced_dataset,
    create_dataloaders,
    download_sms_spam_dataset,
    encode_labels,
    get_spam_dataloaders,
    load_sms_spam,
    prepare_spam_splits,
    random_split,
    sms_spam_source,
)
from .diagrams import plot_model_surgery, plot_pipeline, plot_training_loop
from .download import DownloadError
from .fast import CachedTop, FastEngineError, TrunkCache, train_classifier_fast, use_trunk_cache
from .instructor import PrepareError, prepare, prepared_performance, prepared_seconds, replay_prepared_run
from .gpt import (
    BASE_CONFIG,
    GPTModel,
    causal_attention,
    count_parameters,
    generate,
    generate_token_ids,
    get_model_config,
    model_configs,
    text_to_token_ids,
    token_ids_to_text,
)
from .inference import classify_review, classify_texts
from .lora import LinearWithLoRA, LoRALayer, apply_lora, merge_lora
from .metrics import confusion_matrix, precision_recall_f1, predict_loader
from .performance import compare_fp32_int8, quantize_int8
from .paths import PROJECT_ROOT, data_dir, display_path, instructor_mode
from .precision import PRECISIONS, bf16_native
from .pipeline import LECTURE_SETTINGS, active_model_name, get_trained_classifier, train_spam_classifier
from .plots import (
    plot_causal_mask,
    plot_class_counts,
    plot_confusion_matrix,
    plot_padded_batch,
    plot_performance,
    plot_strategies,
    plot_token_lengths,
    plot_values,
)
from .show import show_source
from .strategies import STRATEGIES, bag_of_words_baseline, comparison_table, run_strategy
from .tokenizer import END_OF_TEXT_ID, TokenizerFileError, get_gpt2_tokenizer
from .training import (
    calc_accuracy_loader,
    calc_loss_batch,
    calc_loss_loader,
    evaluate_model,
    max_steps_from_env,
    train_classifier_simple,
)
from .weights import (
    TEST_MODEL_CONFIG,
    WeightsError,
    build_test_model,
    download_and_load_gpt2,
    get_device,
    load_weights_into_gpt,
    set_seed,
    test_model_enabled,
)
from .widgets import spam_checker
