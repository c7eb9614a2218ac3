"""Runbooks: markdown files parsed into steps, a catalog that matches them to incidents, and the
progress of a runbook walked in an incident (see docs in each module)."""
