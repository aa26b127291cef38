"""Pure core, runs in every process: projects, the workspace plan, their settings and errors;
imports nothing else of cloisonne."""
