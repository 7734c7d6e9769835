"""Report views beyond the claims: error breakdown, per-category AP,
qualitative pairs, training curves."""
