#!/usr/bin/env bash
# Fetch the JVM jars Spark needs beyond what pyspark ships, into ~/.m2 (once per machine):
#   Delta Lake     delta-spark and delta-storage, matching the installed pyspark and delta-spark
#   S3A connector  hadoop-aws matching the Hadoop inside pyspark, and the AWS SDK bundle and
#                  analytics accelerator its Hadoop release names (the bundle is ~690 MB)
# pipelines/platform/spark.py puts them on the session's classpath (the S3A ones only for an
# object-store data root), so a session starts without resolving anything at run time.
set -euo pipefail
PYTHON=${1:-.venv/bin/python}
M2=${MLPIPE_M2_REPOSITORY:-$HOME/.m2/repository}
read -r spark_minor delta_version hadoop_version < <("$PYTHON" -c '
import importlib.metadata as md, os, pyspark, re
jars = os.listdir(os.path.join(os.path.dirname(pyspark.__file__), "jars"))
hadoop = next(re.match(r"hadoop-client-api-(.+)\.jar", j).group(1) for j in jars
              if j.startswith("hadoop-client-api-"))
print(".".join(pyspark.__version__.split(".")[:2]), md.version("delta-spark"), hadoop)')

fetched=()
fetch() {  # group artifact version [packaging]
  local group=$1 artifact=$2 version=$3 packaging=${4:-jar}
  local file="$M2/${group//.//}/$artifact/$version/$artifact-$version.$packaging"
  if [ ! -f "$file" ]; then
    mvn -q dependency:get -Dartifact="$group:$artifact:$version:$packaging" -Dtransitive=false >/dev/null
    fetched+=("$artifact-$version")
  fi
  echo "$file"
}

for artifact in "delta-spark_${spark_minor}_2.13" "delta-storage"; do
  fetch io.delta "$artifact" "$delta_version" >/dev/null
done

# The versions hadoop-aws was built against come from its Hadoop release's own pom.
fetch org.apache.hadoop hadoop-aws "$hadoop_version" >/dev/null
project_pom=$(fetch org.apache.hadoop hadoop-project "$hadoop_version" pom)
property() { sed -n "s:.*<$1>\(.*\)</$1>.*:\1:p" "$project_pom" | head -1; }
fetch software.amazon.awssdk bundle "$(property aws-java-sdk-v2.version)" >/dev/null
fetch software.amazon.s3.analyticsaccelerator analyticsaccelerator-s3 \
  "$(property amazon-s3-analyticsaccelerator-s3.version)" >/dev/null

if [ ${#fetched[@]} -eq 0 ]; then
  echo "Spark jars: Delta $delta_version and S3A for Hadoop $hadoop_version already in $M2"
else
  echo "Spark jars: fetched ${fetched[*]} into $M2"
fi
