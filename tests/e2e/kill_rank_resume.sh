#!/usr/bin/env bash
# kill_rank_resume.sh - kill_rank.sh, then the resubmitted job resumes from the last checkpoint.
LP_KILL_RESUME=1 exec bash "${LP_SOURCE_DIR:?run through ctest}/tests/e2e/kill_rank.sh"
