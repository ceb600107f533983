"""Re-deriving the rows of batches the alerts query's checkpoint committed but the Parquet table lacks.

A killed job loses what its buffer held; at the next start a batch read of `transactions`, between the
offsets the checkpoint logged for those batches, writes them into the table.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import replace

import orjson
from pyspark.sql import SparkSession

from spark_app.config import JobConfig
from spark_app.flagged import classified, sink_rows
from spark_app.live_rules import Judge, segments
from spark_app.offset_log import log_json, offsets_file, uncovered
from spark_app.parquet_buffer import Flush, ParquetBuffer, commit, parquet_part
from txmon_core.records.metrics import QUERY_ALERTS
from txmon_core.rules import RuleSettings


def replay_uncovered(spark: SparkSession, config: JobConfig, buffer: ParquetBuffer,
                     kafka_options: Mapping[str, str]) -> int:
    """Write the flagged rows of committed batches the table lacks (a killed job's buffer); return rows.

    Each stretch of those batches is judged by the thresholds that judged it (spark_app.live_rules).
    """
    import pyarrow as pa

    checkpoint = config.checkpoint(QUERY_ALERTS)
    names = config.topic_names
    gap = uncovered(checkpoint, buffer.table.committed)
    if gap is None:
        return 0
    last, _, end = gap
    first = buffer.table.committed + 1
    default = Judge(config.large_threshold, config.alert_threshold, RuleSettings())
    parts = []
    for seg_first, seg_last, judge in segments(checkpoint, first, last, default):
        offsets = [orjson.dumps(log_json(offsets_file(checkpoint, batch))).decode()
                   for batch in (seg_first - 1, seg_last)]
        source = (
            spark.read.format("kafka").options(**kafka_options).option("subscribe", names.transactions)
            .option("startingOffsets", offsets[0]).option("endingOffsets", offsets[1]).load()
        )
        judged = replace(config, large_threshold=judge.large_threshold, alert_threshold=judge.alert_threshold)
        parts.append(parquet_part(sink_rows(classified(source, judged), names).toArrow()))
    end_offsets = {str(p): int(o) for p, o in end.get(names.transactions, {}).items()}
    written = commit(buffer.table, Flush(first, last, pa.concat_tables(parts), end_offsets), buffer.on_flush)
    print(f"txmon-spark: re-derived {written} Parquet rows of batches up to {last} from Kafka",
          file=sys.stderr, flush=True)
    return written
