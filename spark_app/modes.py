"""How the alerts query runs: names shared by the command line and the job (no pyspark import)."""

MODE_MICROBATCH = "microbatch"
MODE_REALTIME = "realtime"
MODES = (MODE_MICROBATCH, MODE_REALTIME)
# Real-time Mode's batch length: offsets are checkpointed and progress reported once per batch,
# while records flow through as they arrive.
REALTIME_BATCH = "5 seconds"
# The alerts query starts a batch at most this often: a quiet topic is asked for new offsets 10 times
# a second, not back to back; under load batches follow each other at once, so this adds no wait then.
DEFAULT_TRIGGER_MS = 100
# A batch's flagged rows come to the driver: a backlog is taken in bounded bites.
DEFAULT_MAX_OFFSETS = 200_000
