#!/usr/bin/env bash
# The public board's route for a submission, one script: what deploy/submission-pr.yml runs on a pull request
# that adds submissions/<name>/, and what a test runs on a checkout here (tests/test_dvc_pipeline.py).
#
#   deploy/score-submission.sh NAME [REPORT]     # REPORT defaults to report.md
#
# 1. fetch what scoring needs from the project's DVC remote, where one is set (the test data, the grid's models,
#    their evaluations and speed records; a checkout that has them already skips this);
# 2. validate and score the submission with the benchmark's own stages (`dvc repro score aggregate`: the same
#    code that scores every model; a bad submission stops here with one `error:` line);
# 3. write the report the pull request gets (pipeline.results.report): rank among the grid's models plus this
#    one, rank set, tier, and the comparisons with the leader and the baselines of similar size.
# Merging the pull request then rebuilds and redeploys the site (deploy/github-pages.yml).
set -euo pipefail
name="${1:?give the name of the submission (submissions/NAME/)}"
report="${2:-report.md}"
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
test -d "submissions/$name" || { echo "error: submissions/$name: no such submission in this checkout" >&2; exit 2; }
if dvc remote default >/dev/null 2>&1; then
    dvc pull --quiet data/prepared evaluation speed.json models/train_inputs.json
fi
dvc repro --quiet score aggregate
python -m pipeline.results.report "$name" --out "$report"
