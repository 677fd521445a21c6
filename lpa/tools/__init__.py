"""Tools run by hand, not by the workflow: throughput, step cost, stage times and the linear probe."""
