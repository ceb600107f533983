"""The txmon monitor. Only the UI (app.py, messages.py, widgets/) imports Textual; monitor/ (the session:
tail, model, statistics, recording, headless) and supervise/ (the pipeline and its processes) do not."""
