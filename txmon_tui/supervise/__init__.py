"""The processes the monitor runs: the pipeline's startup steps, its child processes and their restarts.

No Textual here: the app and the headless mode poll the same pipeline.
"""
