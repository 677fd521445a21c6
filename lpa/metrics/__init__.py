"""Numbers computed from results: recovery of planted parts, and intervals over seeds."""
