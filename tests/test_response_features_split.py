"""models.response_features is split in three modules: the names stay where callers import
them, and the history module fills exactly the history columns the feature docs declare."""

from __future__ import annotations

import models.response_features as rf
from models.response_history import HISTORY_COLUMNS, ROBUST_HISTORY_COLUMNS


def test_history_columns_are_the_declared_hist_columns():
    declared = [c for c in rf.FEATURE_COLUMNS if c.startswith("hist_")]
    assert sorted(declared) == sorted((*HISTORY_COLUMNS, *ROBUST_HISTORY_COLUMNS))


def test_every_name_of_the_old_module_is_importable_from_it():
    names = ("KEY_COLUMNS", "META_COLUMNS", "EVENT_COLUMNS", "RESOURCE_COLUMNS",
             "LEVEL_III_MIN_NOTICE_MINUTES", "TYPICAL_LOAD_DAYS", "FATIGUE_DAYS",
             "FEATURE_DOCS", "SHRINK_PSEUDO_EVENTS", "ROBUST_HISTORY_COLUMNS",
             "FEATURE_COLUMNS", "achievement", "event_features", "eligible_mask",
             "eligibility", "typical_load_kw", "history", "notice_capacity",
             "robust_history")
    missing = [n for n in names if not hasattr(rf, n)]
    assert missing == []
