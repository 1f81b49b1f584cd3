"""The results history: a store of every run and bench, series over commits, step detection."""
