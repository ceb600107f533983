"""The txmon monitor. UI modules import Textual; the rest (supervision, tailing, stats) does not."""
