"""Dataset audit: label errors, copies across splits and labels, outliers, unreadable files and table problems.

The names below load on first use (PEP 562), so the `fashionlens` command, which registers `audit` from this
package, does not pay for scikit-learn, pandas and the heads at every start.
"""

from fashionlens.lazy import lazy_exports

_EXPORTS = {
    "CleanResult": "clean", "write_clean_table": "clean",
    "AuditReport": "findings", "DuplicateGroup": "findings", "Finding": "findings", "LabelIssue": "findings",
    "Outlier": "findings", "TableIssue": "findings", "Unreadable": "findings",
    "HeadSettings": "labels",
    "json_lines": "report", "write_report": "report",
    "AuditConfig": "run", "audit": "run",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
