"""Evaluate a detector with the paper's protocol: per-generator AP and accuracies, the mean, the
fake recall at 1 % and 5 % false positives on real photos, a CSV like the reference eval.py, a
Markdown table and a precision-recall plot."""
from .common import script_command

add_arguments, run = script_command("evaluate")
