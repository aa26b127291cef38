"""Spawners, in the JupyterHub process: the project gate and one room per backend, compiling core's
WorkspacePlan; imports core, audit's journal, data and workspace's server arguments, never hub,
service or platform."""
