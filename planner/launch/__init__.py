"""Launch configurations for a plan: the engine's or framework's command and the scheduler files around it
(`planner emit`, `planner solve --emit`). Reads a solve result; imports nothing of the solver."""
