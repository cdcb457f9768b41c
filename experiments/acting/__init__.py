"""What the reinforcement-learning command draws and reports (the agents are ``models/rl/``)."""
