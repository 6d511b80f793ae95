"""Dataset audit: label errors, copies across splits and labels, outliers, unreadable files and table problems."""

from fashionlens.audit.clean import CleanResult, write_clean_table
from fashionlens.audit.findings import (AuditReport, DuplicateGroup, Finding, LabelIssue, Outlier, TableIssue,
                                        Unreadable)
from fashionlens.audit.labels import HeadSettings
from fashionlens.audit.report import json_lines, write_report
from fashionlens.audit.run import AuditConfig, audit

__all__ = [
    "AuditConfig",
    "AuditReport",
    "CleanResult",
    "DuplicateGroup",
    "Finding",
    "HeadSettings",
    "LabelIssue",
    "Outlier",
    "TableIssue",
    "Unreadable",
    "audit",
    "json_lines",
    "write_clean_table",
    "write_report",
]
