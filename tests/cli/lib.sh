# lib.sh - shared by the script tests (sourced). Gives: $LLAMAPRO, $T (fresh temp dir), and
#   expect_fail CODE PATTERN CMD... : CMD must exit CODE with one stderr line matching PATTERN.
#   run CMD...                      : CMD must succeed.
set -u
: "${LLAMAPRO:?run through ctest}"
T=$(mktemp -d /tmp/lpcli.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
run() { "$@" || fail "command failed ($?): $*"; }
expect_fail() {
  local code=$1 pat=$2; shift 2
  local err rc
  err=$("$@" 2>&1 >/dev/null); rc=$?
  [ "$rc" = "$code" ] || fail "expected exit $code, got $rc: $* ; stderr: $err"
  [ "$(printf '%s\n' "$err" | grep -c .)" -le 1 ] || fail "expected one line on stderr, got: $err"
  printf '%s' "$err" | grep -q -E -- "$pat" || fail "stderr '$err' does not match '$pat'"
}
