"""Implicit feedback: events after an answer -> labels and weights for the next training window."""

from voicecart.feedback.log import FeedbackLogError, ReadResult, derive_purchase_events, read_events, write_events
from voicecart.feedback.rules import RULES, SUBSTITUTE_RULE, Label, labels_from_event, labels_from_events

__all__ = ["RULES", "SUBSTITUTE_RULE", "FeedbackLogError", "Label", "ReadResult", "derive_purchase_events",
           "labels_from_event", "labels_from_events", "read_events", "write_events"]
