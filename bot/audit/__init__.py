"""Audit-grade record: the timeline hash chain, evidence bundles, retention and regulatory
clocks. See docs/audit.md."""
