#!/bin/sh
# Issue 29's "each test fails on today's main and passes after": runs each
# scenario's test against the build of BASE (the last commit before the
# issue's work, 8ffd551) and against this tree, and prints both results.
#
#   scripts/fails_before.sh [BASE]
#
# BASE is built in a worktree under $TMPDIR with its own target folder
# (a cold debug build); the tests are this tree's, pointed at the old
# binary through MDKEEP_TEST_BIN (or BEFORE_BIN=<a build of BASE>). Run
# as root for the jobs tests.
set -u
base=${1:-8ffd551}
wt=${TMPDIR:-/tmp}/mdkeep-before-$base
if [ -n "${BEFORE_BIN:-}" ]; then
  old=$BEFORE_BIN # a build of BASE made elsewhere (e.g. for the maintain bench)
else
  [ -d "$wt" ] || git worktree add --detach "$wt" "$base" >/dev/null
  CARGO_TARGET_DIR="$wt/target" cargo build -q --manifest-path "$wt/Cargo.toml" --bin mdkeep || exit 1
  old="$wt/target/debug/mdkeep"
fi
cargo test -q --no-run 2>/dev/null
log=${TMPDIR:-/tmp}/fails_before.log
: >"$log"
run() { # test-file test-name [binary]
  if [ -n "${3:-}" ]; then export MDKEEP_TEST_BIN="$3"; else unset MDKEEP_TEST_BIN; fi
  out=$(cargo test -q --test "$1" -- --exact "$2" --include-ignored 2>&1)
  if [ $? = 0 ]; then echo pass; return; fi
  # The assertion that failed, for the note.
  printf '== %s %s (%s)\n%s\n' "$1" "$2" "${3:-this tree}" \
    "$(printf '%s\n' "$out" | grep -A2 -m1 'panicked at' | cut -c1-300)" >>"$log"
  echo FAIL
}
while read -r scenario file name; do
  case "$scenario" in ''|'#'*) continue ;; esac
  printf '%-4s %-10s %-78s before: %-4s  after: %s\n' "$scenario" "$file" "$name" \
    "$(run "$file" "$name" "$old")" "$(run "$file" "$name")"
done <<'LIST'
1   compaction newest_means_arrival_order_across_rewrites
1   compaction oldest_means_arrival_order_across_rewrites
2   maintain   an_undeletable_input_is_deferred_and_never_stops_other_partitions
2   maintain   a_partition_folder_that_turns_read_only_after_the_swap_defers_its_retires
2   store      a_trash_purge_while_the_store_is_down_is_deferred_and_the_run_goes_on
3   rollup     an_unreadable_file_is_quarantined_and_every_other_partition_rolls_up
3   rollup     retention_says_which_partitions_a_failing_rollup_keeps_and_why
4   catalog    a_partition_value_the_engine_refuses_is_never_cataloged
5   jobs       kill_9_of_the_worker_mid_export_releases_the_jobs_pins_and_the_trash_is_purged
6   jobs       a_job_of_a_root_worker_reads_nothing_it_was_not_given
6   jobs       a_job_of_a_non_root_worker_reads_nothing_it_was_not_given
7   jobs       max_pids_holds_with_the_cgroup_v1_pids_controller
7   jobs       max_pids_holds_under_the_watchdog
8   tiering    a_second_move_into_a_tier_merges_with_what_it_holds
9   jobs       a_new_state_database_gives_a_new_job_a_new_folder_and_only_its_own_results
rot catalog    verify_quarantines_a_file_that_rotted_at_rest
clk catalog    a_file_held_open_for_writing_is_not_quarantined_however_old_it_looks
drf catalog    drift_is_quarantined_with_its_reason
LIST
echo "why each failed: $log"
