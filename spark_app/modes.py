"""How the alerts query runs: names shared by the command line and the job (no pyspark import)."""

MODE_MICROBATCH = "microbatch"
MODE_REALTIME = "realtime"
MODES = (MODE_MICROBATCH, MODE_REALTIME)
# Real-time Mode's batch length (Spark's default): offsets are checkpointed and progress reported once
# per batch while records flow through as they arrive. The boundary between two batches is a pause
# (~0.3-0.5 s here: offsets logged, the next batch planned and its task started) that every record
# arriving in it waits out: with 5 s batches that was 5-10 % of records, a p99 of 580 ms; once in
# 5 minutes it is under 0.2 %. The cost: a killed job re-reads up to 5 minutes of records (alerts are at
# least once; readers drop repeats by tx_id).
REALTIME_BATCH = "5 minutes"
# The alerts query starts a batch at most this often: a quiet topic is asked for new offsets 10 times
# a second, not back to back; under load batches follow each other at once, so this adds no wait then.
DEFAULT_TRIGGER_MS = 100
# A batch's flagged rows come to the driver: a backlog is taken in bounded bites.
DEFAULT_MAX_OFFSETS = 200_000
