#!/usr/bin/env bash
# Fetch Delta Lake's two JVM jars (delta-spark and delta-storage) into ~/.m2.
# Spark already ships everything else they need; pipelines/spark.py puts these
# two on spark.jars, so a session starts without resolving anything at run time.
# The coordinates come from the installed pyspark and delta-spark.
set -euo pipefail
PYTHON=${1:-.venv/bin/python}
read -r spark_minor delta_version < <("$PYTHON" -c '
import importlib.metadata as md, pyspark
print(".".join(pyspark.__version__.split(".")[:2]), md.version("delta-spark"))')
fetched=()
for artifact in "delta-spark_${spark_minor}_2.13" "delta-storage"; do
  jar="$HOME/.m2/repository/io/delta/$artifact/$delta_version/$artifact-$delta_version.jar"
  if [ ! -f "$jar" ]; then
    mvn -q dependency:get -Dartifact="io.delta:$artifact:$delta_version" -Dtransitive=false >/dev/null
    fetched+=("$artifact")
  fi
done
if [ ${#fetched[@]} -eq 0 ]; then
  echo "Delta Lake jars: io.delta $delta_version for Spark $spark_minor already in ~/.m2"
else
  echo "Delta Lake jars: fetched io.delta ${fetched[*]} $delta_version into ~/.m2"
fi
