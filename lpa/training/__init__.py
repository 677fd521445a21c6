"""What the training loop is made of: its config, objectives, one step, processes, and the stall warning."""
