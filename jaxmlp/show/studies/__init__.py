"""Studies: small, measured experiments that answer the user's questions, each ending in a report.md."""
