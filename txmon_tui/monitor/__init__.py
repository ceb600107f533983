"""The monitor without its screen: tail, model, statistics, health, history, recording, export, headless.

No Textual here: the app, the headless mode and the benchmark drive the same session.
"""
