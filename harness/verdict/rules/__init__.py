"""The verdict's rules, one module per family (the audit-level ones run from
:mod:`harness.verdict.registry`, the tier-level ones from :mod:`harness.verdict.tier`)."""
