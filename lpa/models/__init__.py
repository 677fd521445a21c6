"""Networks that return their dense feature map, their feature sizes, and checkpoints."""
