"""Dataset audit: label errors, copies across splits and labels, outliers, unreadable files and table problems.

The names below load on first use (PEP 562), so the `fashionlens` command, which registers `audit` from this
package, does not pay for scikit-learn, pandas and the heads at every start.
"""

from importlib import import_module

_EXPORTS = {
    "CleanResult": "clean", "write_clean_table": "clean",
    "AuditReport": "findings", "DuplicateGroup": "findings", "Finding": "findings", "LabelIssue": "findings",
    "Outlier": "findings", "TableIssue": "findings", "Unreadable": "findings",
    "HeadSettings": "labels",
    "json_lines": "report", "write_report": "report",
    "AuditConfig": "run", "audit": "run",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'fashionlens.audit' has no attribute {name!r}")
    return getattr(import_module(f"fashionlens.audit.{_EXPORTS[name]}"), name)
