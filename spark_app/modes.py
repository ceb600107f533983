"""How the alerts query runs: names shared by the command line and the job (no pyspark import)."""

MODE_MICROBATCH = "microbatch"
MODE_REALTIME = "realtime"
MODES = (MODE_MICROBATCH, MODE_REALTIME)
# Real-time Mode's batch length: offsets are checkpointed and progress reported once per batch,
# while records flow through as they arrive.
REALTIME_BATCH = "5 seconds"
